"""Builds the Trainer for one training job (an arm, or pretraining) from the config."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from transformers import PrinterCallback, TrainerCallback, TrainingArguments

from dece.losses.base import TokenLoss
from dece.models import PadCollator
from dece.training import DeceTrainer
from dece.training.distributed import per_process_batch


class EpochPrinter(TrainerCallback):
    """One line per epoch: ``[label] epoch 3/12  loss 0.4210  (41 s)``."""

    def __init__(self, label: str, log: Callable[[str], None]) -> None:
        self.label, self.log = label, log
        self.started = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if logs and "loss" in logs and state.is_world_process_zero:
            self.log(f"[{self.label}] epoch {round(state.epoch or 0)}/{round(args.num_train_epochs)}  "
                     f"loss {float(logs['loss']):.4f}  ({time.perf_counter() - self.started:.0f} s)")


def make_trainer(
    model: torch.nn.Module,
    tokenizer,
    train_dataset: torch.utils.data.Dataset,
    *,
    loss: TokenLoss,
    out_dir: Path,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    grad_accum: int = 1,
    weight_decay: float = 0.0,
    warmup_ratio: float = 0.0,
    lr_scheduler: str = "linear",
    max_grad_norm: float = 1.0,
    epoch_mode: str = "floor",
    checkpoints: bool = True,
    callbacks: Sequence[TrainerCallback] = (),
    label: str = "train",
    log: Callable[[str], None] = print,
    fused_head: bool = False,
    group_by_length: bool = False,
    report_to: Sequence[str] = (),
    logging_dir: Path | None = None,
) -> DeceTrainer:
    """A :class:`DeceTrainer` that shuffles with ``seed``, logs once per epoch, and (with
    ``checkpoints``) keeps the last epoch's checkpoint under ``out_dir`` so a killed job resumes.
    ``report_to`` names Trainer integrations (tensorboard, wandb...); TensorBoard writes to ``logging_dir``.
    ``batch_size`` is the global batch: under a multi-process launch each process takes its share of it
    (:func:`dece.training.distributed.per_process_batch`), so the optimizer steps are those of one process."""
    args = TrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=per_process_batch(batch_size),
        gradient_accumulation_steps=grad_accum,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_steps=warmup_ratio,  # a float < 1 is a ratio of the total steps in transformers 5
        lr_scheduler_type=lr_scheduler,
        max_grad_norm=max_grad_norm,
        seed=seed,
        data_seed=seed,
        save_strategy="epoch" if checkpoints else "no",
        save_total_limit=1,
        logging_strategy="epoch",
        report_to=list(report_to),
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        # every trainable weight gets a gradient each step (the fused head's too, used outside forward): DDP's
        # search for unused ones would cost a graph walk per step and warn that it found none
        ddp_find_unused_parameters=False,
    )
    if report_to and logging_dir is not None:  # TensorBoard's callback reads its folder at construction
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(logging_dir)
    trainer = DeceTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=PadCollator(tokenizer.pad_token_id),
        loss=loss,
        epoch_mode=epoch_mode,
        fused_head=fused_head,
        group_by_length=group_by_length,
        callbacks=[EpochPrinter(label, log), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # the raw log dicts; EpochPrinter says it in one line
    return trainer
