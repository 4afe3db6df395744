"""A saved model's cross-entropy on every target token of a set of rows, with the tokens: the input of the
``pattern`` and ``onset`` scores (:data:`dece.defenses.row_scores.TOKEN_SCORES`) of ``dece audit`` and ``dece_filter``."""

from __future__ import annotations

from collections import Counter
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
        ``(losses, tokens)``: per row, the CE of each target token (nats) and the tokens, aligned, in the order
        of ``rows``. A token is its decoded text (``" or"``, ``"\\n\\t"``) where that text names one token of
        these rows, else the tokenizer's symbol (:func:`readable_tokens`).

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
    names = readable_tokens(tokenizer, {i for row in ids for i in row})
    return losses, [[names[i] for i in row] for row in ids]


def readable_tokens(tokenizer, ids: set[int]) -> dict[int, str]:
    """A name for each token id of ``ids``: its decoded text, or the tokenizer's symbol (``Ġor``, ``▁or``) where
    that text is empty, holds an undecodable byte (U+FFFD) or is shared with another id of ``ids`` (so distinct
    ids keep distinct names: the ``pattern`` and ``onset`` scores count by name).

    Args:
        tokenizer: a Hugging Face tokenizer.
        ids: the token ids to name.

    Returns:
        ``{id: name}`` for every id of ``ids``.
    """
    text = {i: tokenizer.convert_tokens_to_string([tokenizer.convert_ids_to_tokens(i)]) for i in ids}
    shared = Counter(text.values())
    names = {i: t if t and "\ufffd" not in t and shared[t] == 1 else tokenizer.convert_ids_to_tokens(i)
             for i, t in text.items()}
    if len(set(names.values())) < len(names):  # a symbol equal to another id's text: symbols for all
        names = {i: tokenizer.convert_ids_to_tokens(i) for i in ids}
    return names
