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

from dece.data.records import Example
from dece.evaluation import asr, ftr, generate, score
from dece.experiments.config import ArmConfig, ExperimentConfig
from dece.experiments.store import append_jsonl, write_jsonl_atomic
from dece.experiments.training_args import last_checkpoint, make_trainer
from dece.losses import get_loss
from dece.losses.base import TokenLoss
from dece.models import ModelSpec, build_model, encode_examples


class EpochLog(TrainerCallback):
    """Appends the trainer's per-epoch log (loss, learning rate, epoch) to ``train_log.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if logs:
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
    """Trains and saves ``arm_dir/model``; resumes from the last epoch checkpoint if one exists.
    ``callbacks(model, tokenizer, is_encoder_decoder, loss)`` may add per-epoch measurements."""
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
        label=arm.name,
        log=log,
        callbacks=[EpochLog(arm_dir / "train_log.jsonl")]
        + (callbacks(model, tokenizer, is_enc_dec, loss) if callbacks else []),
    )
    resume = last_checkpoint(arm_dir / "checkpoints")
    if resume is None:  # a fresh start: drop logs of an attempt that died before its first checkpoint
        for name in ("train_log.jsonl", "dynamics.jsonl"):
            (arm_dir / name).unlink(missing_ok=True)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    model.save_pretrained(arm_dir / "model")
    tokenizer.save_pretrained(arm_dir / "model")
    shutil.rmtree(arm_dir / "checkpoints", ignore_errors=True)
    return model, tokenizer, is_enc_dec, time.perf_counter() - started


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
    then keeps the original ``src`` and adds ``defended_src``."""
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
    clean_preds = generate(model, tokenizer, clean_src, **gen)
    metrics: dict[str, Any] = score([x.tgt for x in clean_test], clean_preds, e.metrics, lang=lang)
    rows = [_prediction_row("clean", x, p, detector, s if defend else None)
            for x, p, s in zip(clean_test, clean_preds, clean_src)]
    if detector is not None and triggered_test:
        trig_src = [x.src for x in triggered_test] if defend is None else defend([x.src for x in triggered_test])
        trig_preds = generate(model, tokenizer, trig_src, **gen)
        metrics["asr"] = asr(trig_preds, detector)
        metrics["ftr"] = ftr(clean_preds, detector)
        rows += [_prediction_row("triggered", x, p, detector, s if defend else None)
                 for x, p, s in zip(triggered_test, trig_preds, trig_src)]
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


def arm_fingerprint(cfg: ExperimentConfig, arm: ArmConfig) -> str:
    """What an arm's result depends on: everything but the experiment's name, the other arms (except one
    whose per-row losses its defense reads), the output folder and how many processes and threads ran it
    (so the same arm in two experiments has the same fingerprint, and its folder can be copied between them). Values left at their defaults are not
    hashed, so new config fields keep old run folders resumable."""
    neutral = ExperimentConfig()
    source = cfg.source_arm(arm)  # an arm whose training dynamics this arm's defense reads is part of it
    arms = (arm,) if source is None else (arm, source)
    return dataclasses.replace(cfg, name=neutral.name, arms=arms, output_dir=neutral.output_dir, jobs=neutral.jobs,
                               train=dataclasses.replace(cfg.train, threads=neutral.train.threads)).fingerprint()

