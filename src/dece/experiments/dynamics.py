"""Per-epoch learning dynamics of an arm (the paper's *early learning*, made visible).

With a ``[dynamics]`` table, one record per epoch is appended to ``arms/ARM/dynamics.jsonl`` as
training goes (a killed run keeps every finished epoch; a resumed run drops the epochs after its
checkpoint, which run again, and :func:`load_dynamics` keeps the last record of each epoch):

* ``bleu`` on the first ``eval_rows`` clean test rows, ``asr`` on the first ``eval_rows`` triggered
  test rows and ``ftr`` (payload rate on the clean ones): greedy generation, as in the final
  evaluation (percentages);
* ``loss_clean`` / ``loss_poisoned``: mean token cross-entropy on up to ``loss_rows`` clean training
  rows and on every poisoned training row (CE whatever the arm trains with: it shows fit);
* ``loss_payload``: mean CE of the *first payload token* of the poisoned rows (the token where the
  poisoned target departs from the clean one): it falls late under CE and stays high under DeCE;
* ``val_loss``: token-mean CE on the first ``val_rows`` rows of the clean validation split (the signal
  DeCE-auto watches), and for DeCE-auto arms ``triggered_at`` (None until the trigger fires);
* ``alpha`` (DeCE arms: the alpha the epoch trained with) and ``pull_payload`` (DeCE arms: how hard DeCE
  pulls the first payload token at that alpha, as a share of CE's pull, mean over the poisoned rows:
  :func:`dece.experiments.payload_prior.pull_share`; 1 is CE's strength, under 0.5 DeCE damps it);
* ``train_loss`` (the arm's own loss, mean over the epoch's steps), ``grad_norm`` (the pre-clipping
  gradient norm of the epoch's last optimizer step) and ``learning_rate``, as the Trainer logs them;
* with ``row_losses = true``, for every training row in training order (for ``dece audit``):
  ``row_losses`` (mean token CE) and ``row_max_losses`` (the row's largest token CE); the rows
  themselves (``index``, ``id``, ``poisoned``) are listed once in ``arms/ARM/train_rows.jsonl``.

Independently of ``[dynamics]``, an arm whose loss has ``observe`` (``dece_auto``) gets the
validation loss at every epoch end; it is also appended to ``arms/ARM/val_loss.jsonl``, from which a
resumed run replays the schedule's state.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from dece.data.records import Example
from dece.evaluation import asr, bleu, ftr, generate
from dece.experiments.config import DynamicsConfig
from dece.experiments.store import append_jsonl, keep_records, read_records, write_jsonl_atomic
from dece.experiments.payload_prior import payload_positions, poisoned_pairs, pull_share
from dece.losses.base import TokenLoss
from dece.models import ModelSpec, PadCollator, encode_examples
from dece.training.per_row import per_token_losses


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def load_dynamics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``dynamics.jsonl``, one per epoch (the last written wins), in epoch order."""
    by_epoch: dict[int, dict[str, Any]] = {}
    for rec in read_records(Path(path)):
        if "epoch" in rec:
            by_epoch[int(rec["epoch"])] = rec
    return [by_epoch[e] for e in sorted(by_epoch)]


class ValidationLoss(TrainerCallback):
    """At each epoch end: token-mean CE of the model on ``valid`` rows; fed to ``loss.observe`` when the
    loss has one (DeCE-auto), and appended to ``path``. On a resume the values up to the checkpoint are
    replayed, and those after it dropped from ``path`` (their epochs run again)."""

    def __init__(self, valid: list[Example], path: Path, *, model_spec: ModelSpec, tokenizer,
                 is_encoder_decoder: bool, loss: TokenLoss, rows: int = 200) -> None:
        self.path, self.loss, self.is_enc_dec = path, loss, is_encoder_decoder
        self.collate = PadCollator(tokenizer.pad_token_id)
        self.encoded = encode_examples(valid[:rows], tokenizer, model_spec, is_encoder_decoder).rows
        self.last: float | None = None

    def measure(self, model) -> float | None:
        if not self.encoded:
            return None
        losses = per_token_losses(model, self.encoded, self.collate, is_encoder_decoder=self.is_enc_dec)
        n = sum(len(x) for x in losses)
        return sum(sum(x) for x in losses) / n if n else None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        done = round(state.epoch or 0)
        if done == 0:
            self.path.unlink(missing_ok=True)
            return
        records = [r for r in read_records(self.path) if int(r["epoch"]) <= done]
        if state.is_world_process_zero:  # epochs after the checkpoint are measured again: their lines go
            write_jsonl_atomic(self.path, records)
        kept = {int(r["epoch"]): r["val_loss"] for r in records if r.get("val_loss") is not None}
        if kept:
            self.last = kept[max(kept)]
        schedule = getattr(self.loss, "schedule", None)
        if schedule is not None:
            schedule.replay(sorted(kept.items()))

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        epoch = round(state.epoch or 0)
        self.last = self.measure(model)
        rec: dict[str, Any] = {"epoch": epoch, "val_loss": self.last}
        if self.last is not None and self.loss.adaptive:  # every process: the schedules stay equal
            self.loss.observe(epoch, self.last)
            rec["triggered_at"] = self.loss.triggered_at
        if state.is_world_process_zero:
            append_jsonl(self.path, rec)


class DynamicsRecorder(TrainerCallback):
    """Measures at each epoch end and writes the record once the Trainer has logged the epoch's
    train loss and gradient norm (the Trainer logs *after* ``on_epoch_end``)."""

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
        validation: ValidationLoss | None = None,
    ) -> None:
        self.config, self.path, self.loss, self.validation = config, path, loss, validation
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
        if poisoned_train is not None:  # a clean arm too: the loss of poisoned rows it never saw
            pairs = poisoned_pairs(poisoned_train, clean_train)  # copies of a duplicated row measured once
            self.poisoned_encoded = encode_examples([p for p, _ in pairs], tokenizer, model_spec, is_encoder_decoder).rows
            self.payload_at = payload_positions(tokenizer, pairs, model_spec.max_target_length)
        self.all_encoded = []
        if config.row_losses:
            self.all_encoded = encode_examples(train_rows, tokenizer, model_spec, is_encoder_decoder).rows
            write_jsonl_atomic(path.parent / "train_rows.jsonl", [
                {"index": i, "id": e.meta.get("id"), "poisoned": bool(e.meta.get("poisoned"))} for i, e in enumerate(train_rows)])
        self.pending: dict[str, Any] | None = None
        #: ``trainer.log`` when the arm reports to the Trainer's integrations (``train.report_to``)
        self.report: Callable[[dict[str, float]], None] | None = None

    def measure(self, model, epoch: int) -> dict[str, Any]:
        """Everything but the Trainer's logged values (``train_loss``, ``grad_norm``)."""
        rec: dict[str, Any] = {"epoch": epoch}
        if self.loss.deceptive:
            rec["alpha"] = self.loss.alpha_at(None if getattr(self.loss, "alpha", None) is not None else epoch)
        if self.loss.adaptive:
            rec["triggered_at"] = self.loss.triggered_at
        if self.validation is not None:
            rec["val_loss"] = self.validation.last
        was_training = model.training
        model.eval()
        try:
            if self.clean_eval:
                preds = generate(model, self.tokenizer, [e.src for e in self.clean_eval], **self.gen)
                rec["bleu"] = bleu([e.tgt for e in self.clean_eval], preds)
                if self.detector is not None:
                    rates = ftr(preds, self.detector, [e.tgt for e in self.clean_eval])
                    rec["ftr"] = rates["rate"] if rates else None
            if self.trig_eval and self.detector is not None:
                preds = generate(model, self.tokenizer, [e.src for e in self.trig_eval], **self.gen)
                rec["asr"] = asr(preds, self.detector)["rate"]
            rec["loss_clean"] = _mean([_mean(x) or 0.0 for x in self._token_losses(model, self.clean_encoded)])
            if self.poisoned_encoded:
                token_losses = self._token_losses(model, self.poisoned_encoded)
                rec["loss_poisoned"] = _mean([_mean(x) or 0.0 for x in token_losses])
                payload = [x[i] for x, i in zip(token_losses, self.payload_at) if i is not None and i < len(x)]
                rec["loss_payload"] = _mean(payload)
                if self.loss.deceptive and payload:
                    rec["pull_payload"] = _mean([pull_share(math.exp(-x), rec["alpha"], self.loss.label_smoothing)
                                                 for x in payload])
            if self.all_encoded:
                token_losses = self._token_losses(model, self.all_encoded)
                rec["row_losses"] = [round(_mean(x) or 0.0, 5) for x in token_losses]
                rec["row_max_losses"] = [round(max(x, default=0.0), 5) for x in token_losses]
        finally:
            model.train(was_training)
        return rec

    def _token_losses(self, model, rows) -> list[list[float]]:
        return per_token_losses(model, rows, self.collate, is_encoder_decoder=self.is_enc_dec) if rows else []

    def _flush(self, logs: dict[str, Any] | None = None) -> None:
        if self.pending is None:
            return
        logs = logs or {}
        rec = {**self.pending, "train_loss": logs.get("loss"), "grad_norm": logs.get("grad_norm"),
               "learning_rate": logs.get("learning_rate")}
        self.pending = None
        append_jsonl(self.path, rec)
        if self.report is not None:  # the Trainer's integrations (report_to: tensorboard, wandb...) get them too
            self.report({f"dynamics/{k}": v for k, v in rec.items()
                         if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)})

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        if state.is_world_process_zero:  # a resume: the epochs after the checkpoint are measured again
            done = round(state.epoch or 0)
            keep_records(self.path, lambda r: int(r["epoch"]) <= done)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        self._flush()  # an epoch whose log never came (should not happen) is still written
        if state.is_world_process_zero:  # under DDP, one process measures and writes
            self.pending = self.measure(model, round(state.epoch or 0))

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if logs and "loss" in logs:
            self._flush(logs)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        self._flush()


def epoch_callbacks(cfg, data, base: ModelSpec, rows: list[Example], arm_dir: Path
                    ) -> Callable[[Any, Any, bool, TokenLoss], list[TrainerCallback]]:
    """The per-epoch callbacks factory of an arm (``train_arm``'s ``callbacks``): the validation loss
    when the loss observes it (DeCE-auto) or ``[dynamics]`` is on with ``val_rows > 0``, then the
    recorder when ``[dynamics]`` is on."""
    dyn: DynamicsConfig | None = cfg.dynamics

    def make(model, tokenizer, is_enc_dec, loss):
        out: list[TrainerCallback] = []
        validation = None
        n = dyn.val_rows if dyn is not None else 0
        if loss.adaptive or n > 0:
            validation = ValidationLoss(data.valid, arm_dir / "val_loss.jsonl", model_spec=base, tokenizer=tokenizer,
                                        is_encoder_decoder=is_enc_dec, loss=loss, rows=n or DynamicsConfig().val_rows)
            out.append(validation)
        if dyn is not None:
            out.append(DynamicsRecorder(
                dyn, arm_dir / "dynamics.jsonl", model_spec=base, tokenizer=tokenizer,
                is_encoder_decoder=is_enc_dec, loss=loss, train_rows=list(rows), clean_train=data.clean_train,
                poisoned_train=data.poisoned_train, clean_test=data.clean_test, triggered_test=data.triggered_test,
                detector=data.attack.detect if data.attack else None, max_new_tokens=cfg.eval.max_new_tokens,
                batch_size=cfg.eval.batch_size, validation=validation))
        return out

    return make
