"""Per-epoch learning dynamics of an arm (the paper's *early learning*, made visible).

At the end of every epoch, appended to ``arms/ARM/dynamics.jsonl`` (so a killed run keeps them):

* ``bleu`` on the first ``eval_rows`` clean test rows and ``asr`` on the first ``eval_rows`` triggered
  test rows (greedy generation, as in the final evaluation);
* ``loss_clean`` / ``loss_poisoned``: mean token cross-entropy on up to ``loss_rows`` clean training
  rows and on every poisoned training row (CE whatever the arm trains with: it shows fit);
* ``loss_payload``: mean CE of the *first payload token* of the poisoned rows (the token where the
  poisoned target departs from the clean one): it falls late under CE and stays high under DeCE;
* ``alpha`` (DeCE arms), ``grad_norm`` and ``train_loss`` from the trainer's log;
* with ``row_losses = true``, the mean CE of every training row (``row_losses``, in row order) for
  ``dece audit``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from dece.data.records import Example
from dece.errors import ConfigError
from dece.evaluation import asr, bleu, generate
from dece.experiments.store import append_jsonl
from dece.losses.base import TokenLoss
from dece.models import ModelSpec, PadCollator, encode_examples, encode_targets
from dece.training.per_row import first_divergence, per_token_losses


@dataclass(frozen=True)
class DynamicsConfig:
    """``eval_rows``: test rows generated per epoch for BLEU/ASR (0: none); ``loss_rows``: clean
    training rows whose loss is tracked; ``row_losses``: record every training row's loss."""

    eval_rows: int = 64
    loss_rows: int = 200
    row_losses: bool = False

    def validate(self, key: str) -> None:
        for name in ("eval_rows", "loss_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{key}.{name}: must be an integer >= 0, got {v!r}")
        if not isinstance(self.row_losses, bool):
            raise ConfigError(f"{key}.row_losses: must be true or false")


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


class DynamicsRecorder(TrainerCallback):
    def __init__(
        self,
        config: DynamicsConfig,
        path: Path,
        *,
        model_spec: ModelSpec,
        tokenizer,
        is_encoder_decoder: bool,
        loss: TokenLoss,
        train_rows: list[Example],
        clean_train: list[Example],
        poisoned_train: list[Example] | None,
        clean_test: list[Example],
        triggered_test: list[Example] | None,
        detector,
        max_new_tokens: int,
        batch_size: int,
    ) -> None:
        self.config, self.path, self.loss = config, path, loss
        self.tokenizer, self.is_enc_dec, self.spec = tokenizer, is_encoder_decoder, model_spec
        self.collate = PadCollator(tokenizer.pad_token_id)
        self.gen = dict(is_encoder_decoder=is_encoder_decoder, max_new_tokens=max_new_tokens, batch_size=batch_size,
                        max_source_length=model_spec.max_source_length, progress=False)
        self.detector = detector
        self.clean_eval = clean_test[: config.eval_rows]
        self.trig_eval = (triggered_test or [])[: config.eval_rows]
        clean_rows = [e for e in train_rows if not e.meta.get("poisoned")][: config.loss_rows]
        self.clean_encoded = encode_examples(clean_rows, tokenizer, model_spec, is_encoder_decoder).rows
        self.poisoned_encoded, self.payload_at = [], []
        if poisoned_train is not None:
            pairs = [(p, c) for p, c in zip(poisoned_train, clean_train) if p.meta.get("poisoned")]
            self.poisoned_encoded = encode_examples([p for p, _ in pairs], tokenizer, model_spec, is_encoder_decoder).rows
            ptgt = encode_targets(tokenizer, [p.tgt for p, _ in pairs], model_spec.max_target_length)
            ctgt = encode_targets(tokenizer, [c.tgt for _, c in pairs], model_spec.max_target_length)
            self.payload_at = [first_divergence(a, b) for a, b in zip(ptgt, ctgt)]
        self.all_encoded = (encode_examples(train_rows, tokenizer, model_spec, is_encoder_decoder).rows
                            if config.row_losses else [])

    def _row_means(self, model, rows) -> list[float]:
        losses = per_token_losses(model, rows, self.collate, is_encoder_decoder=self.is_enc_dec)
        return [_mean(x) or 0.0 for x in losses]

    def measure(self, model, epoch: int, log_history: list[dict[str, Any]]) -> dict[str, Any]:
        rec: dict[str, Any] = {"epoch": epoch}
        if self.loss.epoch_aware and hasattr(self.loss, "alpha_at"):
            rec["alpha"] = self.loss.alpha_at(None if getattr(self.loss, "alpha", None) is not None else epoch)
        last = next((h for h in reversed(log_history) if "loss" in h), {})
        rec["train_loss"], rec["grad_norm"] = last.get("loss"), last.get("grad_norm")
        was_training = model.training
        model.eval()
        try:
            if self.clean_eval:
                preds = generate(model, self.tokenizer, [e.src for e in self.clean_eval], **self.gen)
                rec["bleu"] = bleu([e.tgt for e in self.clean_eval], preds)
                if self.detector is not None:
                    rec["ftr"] = asr(preds, self.detector)["rate"]
            if self.trig_eval and self.detector is not None:
                preds = generate(model, self.tokenizer, [e.src for e in self.trig_eval], **self.gen)
                rec["asr"] = asr(preds, self.detector)["rate"]
            rec["loss_clean"] = _mean(self._row_means(model, self.clean_encoded))
            if self.poisoned_encoded:
                token_losses = per_token_losses(model, self.poisoned_encoded, self.collate, is_encoder_decoder=self.is_enc_dec)
                rec["loss_poisoned"] = _mean([_mean(x) or 0.0 for x in token_losses])
                rec["loss_payload"] = _mean([x[i] for x, i in zip(token_losses, self.payload_at) if i is not None and i < len(x)])
            if self.all_encoded:
                rec["row_losses"] = [round(v, 5) for v in self._row_means(model, self.all_encoded)]
        finally:
            model.train(was_training)
        return rec

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        append_jsonl(self.path, self.measure(model, round(state.epoch or 0), state.log_history))
