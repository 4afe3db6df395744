"""One arm of an experiment: fine-tune the base model on the arm's training rows with the arm's
loss, then generate on the clean and triggered test sets and score."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from transformers import TrainerCallback, set_seed

from dece.data.io.common import atomic_dir
from dece.data.records import Example
from dece.evaluation import asr, ftr, generate, score
from dece.experiments.config import ArmConfig, ExperimentConfig
from dece.experiments.dynamics import DynamicsRecorder
from dece.experiments.store import (
    CHECKPOINT_MARK,
    TRAINED_MARK,
    append_jsonl,
    check_checkpoints,
    keep_records,
    read_json,
    saved_training,
    training_fingerprint,
    write_json_atomic,
    write_jsonl_atomic,
)
from dece.experiments.training_args import make_trainer
from dece.losses import get_loss
from dece.losses.base import TokenLoss
from dece.models import ModelSpec, build_model, encode_examples
from dece.training.distributed import gather, is_main, on_main, split


class EpochLog(TrainerCallback):
    """Appends the trainer's per-epoch log (loss, learning rate, epoch) to ``train_log.jsonl``; a resumed
    run first drops the lines written after its checkpoint (their steps run again)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        if state.is_world_process_zero:
            keep_records(self.path, lambda r: r.get("step", 0) <= state.global_step and "train_runtime" not in r)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if logs and state.is_world_process_zero:
            append_jsonl(self.path, {"step": state.global_step, **logs})


def train_arm(
    cfg: ExperimentConfig,
    arm: ArmConfig,
    base: ModelSpec,
    rows: Sequence[Example],
    arm_dir: Path,
    callbacks: Callable[[Any, Any, bool, TokenLoss], list[TrainerCallback]] | None = None,
    log: Callable[[str], None] = print,
):
    """Trains and saves ``arm_dir/model``; returns ``(model, tokenizer, is_encoder_decoder, seconds)``.

    * A model this arm saved already (``model/trained.json`` with the arm's training fingerprint) is
      loaded, not retrained: an arm whose evaluation failed or was killed resumes at evaluation, and
      ``seconds`` is the training time recorded then.
    * Otherwise training resumes from the last complete epoch checkpoint, if one exists, but only one
      written under the same training fingerprint (:func:`check_checkpoints`).
    * The model folder is written under a temporary name and renamed when complete.
    * Under a multi-process launch every process trains (DDP: the Trainer's), the main one alone writes.
    ``callbacks(model, tokenizer, is_encoder_decoder, loss)`` may add per-epoch measurements.

    Raises:
        ConfigError: the checkpoints were written by another config.
    """
    fingerprint = training_fingerprint(cfg, arm)
    saved = saved_training(arm_dir, fingerprint)
    if saved is not None:
        log(f"[{arm.name}] trained already ({saved['train_seconds']:.0f} s): the saved model is reused")
        return (*load_trained(base, arm_dir / "model"), float(saved["train_seconds"]))
    resume = on_main(lambda: check_checkpoints(arm_dir / "checkpoints", fingerprint))
    set_seed(cfg.seed)
    model, tokenizer, is_enc_dec = build_model(base)
    dataset = encode_examples(rows, tokenizer, base, is_enc_dec)
    t = cfg.train
    loss = get_loss(arm.loss, **arm.loss_params)
    trainer = make_trainer(
        model,
        tokenizer,
        dataset,
        loss=loss,
        out_dir=arm_dir / "checkpoints",
        epochs=t.epochs,
        learning_rate=t.learning_rate * arm.lr_scale * defense_lr_factor(arm),
        batch_size=t.batch_size,
        seed=cfg.seed,
        grad_accum=t.grad_accum,
        weight_decay=t.weight_decay,
        warmup_ratio=t.warmup_ratio,
        lr_scheduler=t.lr_scheduler,
        max_grad_norm=t.max_grad_norm,
        epoch_mode=t.epoch_mode,
        fused_head=t.fused_head,
        group_by_length=t.group_by_length,
        report_to=t.report_to,
        logging_dir=arm_dir / "logs",
        label=arm.name,
        log=log,
        callbacks=[EpochLog(arm_dir / "train_log.jsonl")]
        + (callbacks(model, tokenizer, is_enc_dec, loss) if callbacks else []),
    )
    if t.report_to:  # the dynamics go to the Trainer's integrations as well
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, DynamicsRecorder):
                callback.report = trainer.log
    before = 0.0
    if resume is None:  # a fresh start: drop logs of an attempt that died before its first checkpoint
        on_main(lambda: _fresh_start(arm_dir, fingerprint))
    else:
        before = float(read_json(arm_dir / "checkpoints" / CHECKPOINT_MARK).get("train_seconds", 0.0))
        log(f"[{arm.name}] resuming from {Path(resume).name} (the last complete epoch checkpoint)")
    started = time.perf_counter()
    trainer.add_callback(TrainSeconds(arm_dir / "checkpoints" / CHECKPOINT_MARK, fingerprint, before, started))
    trainer.train(resume_from_checkpoint=resume)
    seconds = on_main(lambda: _save_trained(model, tokenizer, arm_dir, fingerprint,
                                            before + time.perf_counter() - started))
    return model, tokenizer, is_enc_dec, seconds


def _fresh_start(arm_dir: Path, fingerprint: str) -> None:
    for name in ("train_log.jsonl", "dynamics.jsonl"):
        (arm_dir / name).unlink(missing_ok=True)
    write_json_atomic(arm_dir / "checkpoints" / CHECKPOINT_MARK, {"fingerprint": fingerprint})


def _save_trained(model, tokenizer, arm_dir: Path, fingerprint: str, seconds: float) -> float:
    """Writes ``arm_dir/model`` in one rename (with the mark of its training fingerprint), drops the epoch
    checkpoints, and returns ``seconds`` (the main process's training time: every process's under a launch)."""
    with atomic_dir(arm_dir / "model") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json_atomic(tmp / TRAINED_MARK, {"fingerprint": fingerprint, "train_seconds": round(seconds, 1)})
    shutil.rmtree(arm_dir / "checkpoints", ignore_errors=True)
    return seconds


class TrainSeconds(TrainerCallback):
    """Records the training time so far beside the checkpoints at every save, so that
    ``train_seconds`` after a resume counts every attempt's training, not only the last one's."""

    def __init__(self, path: Path, fingerprint: str, before: float, started: float) -> None:
        self.path, self.fingerprint, self.before, self.started = path, fingerprint, before, started

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        if not state.is_world_process_zero:
            return
        seconds = self.before + time.perf_counter() - self.started
        write_json_atomic(self.path, {"fingerprint": self.fingerprint, "train_seconds": round(seconds, 1)})


def load_trained(base: ModelSpec, model_dir: Path):
    """``(model, tokenizer, is_encoder_decoder)`` of a model saved by ``train_arm`` (LoRA adapters too)."""
    if (model_dir / "adapter_config.json").exists():
        import peft
        from transformers import AutoTokenizer

        model, _, is_enc_dec = build_model(dataclasses.replace(base, lora=None))
        model = peft.PeftModel.from_pretrained(model, model_dir)
        return model, AutoTokenizer.from_pretrained(model_dir), is_enc_dec
    return build_model(dataclasses.replace(base, name=f"hf:{model_dir.resolve()}", lora=None))


def evaluate_arm(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    tokenizer,
    is_enc_dec: bool,
    clean_test: Sequence[Example],
    triggered_test: Sequence[Example] | None,
    detector: Callable[[str], bool] | None,
    lang: str,
    arm_dir: Path,
    defend: Callable[[list[str]], list[str]] | None = None,
) -> dict[str, Any]:
    """Generates on both test sets, writes ``predictions.jsonl`` and returns the metrics. ``defend``
    (an input defense's ``transform``) rewrites the sources before generation; the predictions file
    then keeps the original ``src`` and adds ``defended_src``. Under a multi-process launch each process
    generates a contiguous slice of the rows; the slices are gathered in row order, and the main
    process writes the file."""
    model.eval()
    e = cfg.eval
    gen = dict(
        is_encoder_decoder=is_enc_dec,
        max_new_tokens=e.max_new_tokens,
        batch_size=e.batch_size,
        num_beams=e.num_beams,
        max_source_length=cfg.model.max_source_length,
    )
    clean_src = [x.src for x in clean_test] if defend is None else defend([x.src for x in clean_test])
    clean_preds = gather(generate(model, tokenizer, split(clean_src), **gen))
    metrics: dict[str, Any] = score([x.tgt for x in clean_test], clean_preds, e.metrics, lang=lang)
    rows = [_prediction_row("clean", x, p, detector, s if defend else None)
            for x, p, s in zip(clean_test, clean_preds, clean_src)]
    if detector is not None and triggered_test:
        trig_src = [x.src for x in triggered_test] if defend is None else defend([x.src for x in triggered_test])
        trig_preds = gather(generate(model, tokenizer, split(trig_src), **gen))
        metrics["asr"] = asr(trig_preds, detector)
        metrics["ftr"] = ftr(clean_preds, detector, [x.tgt for x in clean_test])
        rows += [_prediction_row("triggered", x, p, detector, s if defend else None)
                 for x, p, s in zip(triggered_test, trig_preds, trig_src)]
    if is_main():
        write_jsonl_atomic(arm_dir / "predictions.jsonl", rows)
    return metrics


def _prediction_row(split: str, ex: Example, pred: str, detector, defended_src: str | None = None) -> dict[str, Any]:
    row = {"split": split, "id": ex.meta.get("id"), "src": ex.src, "tgt": ex.tgt, "pred": pred, "meta": ex.meta}
    if defended_src is not None:
        row["defended_src"] = defended_src
    if detector is not None:
        row["payload"] = bool(detector(pred))
    return row


def defense_lr_factor(arm: ArmConfig) -> float:
    """The learning-rate factor of the arm's training defense (``moderate_fitting``); 1 otherwise."""
    if arm.defense is None:
        return 1.0
    from dece.defenses import TrainingDefense, get_defense

    defense = get_defense(arm.defense, **arm.defense_params)
    return defense.lr_factor if isinstance(defense, TrainingDefense) else 1.0
