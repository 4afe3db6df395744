"""A saved model's cross-entropy on every target token of a set of rows, with the tokens: the input of the
``pattern`` score (:func:`dece.defenses.row_scores.pattern_scores`) of ``dece audit`` and ``dece_filter``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dece.data.records import Example
from dece.errors import ConfigError
from dece.experiments.arm import load_trained
from dece.models import ModelSpec, PadCollator, encode_examples
from dece.training.per_row import per_token_losses_and_ids


def model_token_losses(spec: ModelSpec, model_dir: Path, rows: Sequence[Example], *, batch_size: int = 32
                       ) -> tuple[list[list[float]], list[list[str]]]:
    """Teacher-forced CE of the model saved in ``model_dir`` on each target token of ``rows``.

    Args:
        spec: the run's model spec (length limits; its name is replaced by ``model_dir``).
        model_dir: a model folder written by an arm (``arms/ARM/model``; LoRA adapters too).
        rows: the rows, encoded with ``spec``'s limits (targets cut at ``max_target_length``).
        batch_size: rows per forward pass (batched by length).

    Returns:
        ``(losses, tokens)``: per row, the CE of each target token (nats) and the tokens (the tokenizer's
        strings), aligned, in the order of ``rows``.

    Raises:
        ConfigError: ``model_dir`` holds no saved model.
    """
    model_dir = Path(model_dir)
    if not ((model_dir / "config.json").exists() or (model_dir / "adapter_config.json").exists()):
        raise ConfigError(f"{model_dir}: no saved model (config.json or adapter_config.json); the arm must have "
                          "finished with its model kept")
    model, tokenizer, is_enc_dec = load_trained(spec, model_dir)
    encoded = encode_examples(rows, tokenizer, spec, is_enc_dec).rows
    losses, ids = per_token_losses_and_ids(model, encoded, PadCollator(tokenizer.pad_token_id),
                                           is_encoder_decoder=is_enc_dec, batch_size=batch_size)
    return losses, [tokenizer.convert_ids_to_tokens(x) for x in ids]
