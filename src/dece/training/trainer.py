"""A drop-in ``transformers.Trainer`` that trains with any loss of :mod:`dece.losses`.

* **Epoch.** DeCE's alpha = alpha_base ** epoch with the epoch counted from 1: read from the trainer
  state as ``floor(state.epoch) + 1`` (``epoch_mode="floor"``, the paper's schedule), or
  ``state.epoch + 1`` (``"continuous"``, alpha decays a little at every step).
* **Shift.** Decoder-only models predict token t+1 at position t: labels are shifted left (the last
  position is ignored) and the full logits are used, so no shifted copy of the logits is made.
  Encoder-decoder models are not shifted; if the batch has no ``decoder_input_ids`` they are built from
  the labels with the model's own ``prepare_decoder_input_ids_from_labels``.
* **Normalisation.** The loss is a sum over the micro-batch's target tokens divided by the Trainer's
  ``num_items_in_batch`` (the target-token count of the whole accumulated batch, across processes
  when ``average_tokens_across_devices``), so gradient accumulation and DDP give the gradient of the
  large batch's token mean. The Trainer's own CE is never computed (labels are not passed to the model).
  A loss with a fixed denominator of its own (DeCE's ``authors_compat=True``: the authors divide by
  *all* positions, padding included) keeps it: each micro-batch is divided by its number of positions
  times the accumulation steps (times the processes when tokens are averaged across devices), which is
  the authors' mean exactly for one process without accumulation, as in their scripts.
* **Options the Trainer sets.** ``reduction`` must be ``"mean"`` and ``ignore_index`` -100 (the label
  padding of the Trainer's collators); anything else is refused rather than silently replaced.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from transformers import Trainer, TrainerState
from transformers.trainer_pt_utils import LengthGroupedSampler

from dece.errors import ConfigError
from dece.losses.base import TokenLoss

EPOCH_MODES = ("floor", "continuous")


def epoch_from_state(state: TrainerState, mode: str = "floor") -> float:
    """The epoch counted from 1 for the step in progress (``state.epoch`` is the fraction done)."""
    done = float(state.epoch or 0.0)
    if mode == "floor":
        return float(math.floor(done) + 1)
    if mode == "continuous":
        return done + 1.0
    raise ConfigError(f"epoch_mode must be one of {', '.join(EPOCH_MODES)}, got {mode!r}")


def shift_for_causal_lm(labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """labels[t+1] at position t; the last position becomes ``ignore_index``."""
    shifted = torch.full_like(labels, ignore_index)
    shifted[..., :-1] = labels[..., 1:]
    return shifted


def check_trainer_loss(loss: TokenLoss) -> None:
    """Refuse loss options that a Trainer integration would otherwise override.

    Raises:
        ConfigError: ``loss.reduction`` is not ``"mean"`` (the Trainer normalises the mean itself), or
            ``loss.ignore_index`` is not -100 (the label padding of the Trainer's collators).
    """
    if loss.reduction != "mean":
        raise ConfigError(f"reduction={loss.reduction!r}: a Trainer takes the token mean (normalised over the "
                          "accumulated batch); leave reduction at 'mean'")
    if loss.ignore_index != -100:
        raise ConfigError(f"ignore_index={loss.ignore_index}: the Trainer's labels are padded with -100; "
                          "leave ignore_index at -100")


def positions(labels: torch.Tensor, is_encoder_decoder: bool) -> torch.Tensor:
    """The predicted positions of a batch: every label of a seq2seq model; all but the first of each
    row for a causal LM (``logits[:, :-1]`` against ``labels[:, 1:]``, as the authors' scripts do)."""
    return labels if is_encoder_decoder else labels[..., 1:]


def step_denominator(
    loss: TokenLoss, target: torch.Tensor, num_items_in_batch: Any, positions_scale: Callable[[], float]
) -> float | None:
    """The divisor of one micro-batch's summed loss: the loss's own fixed denominator (e.g. all
    positions, ``authors_compat``) times ``positions_scale()`` when it has one, else the Trainer's
    ``num_items_in_batch``; None without either (the micro-batch's own token mean)."""
    fixed = loss.default_denominator(target)
    if fixed is not None:
        return fixed * positions_scale()
    return None if num_items_in_batch is None else float(num_items_in_batch)


def make_compute_loss_func(
    loss: TokenLoss,
    *,
    is_encoder_decoder: bool,
    epoch: Callable[[], float],
    positions_scale: Callable[[], float] = lambda: 1.0,
) -> Callable[..., torch.Tensor]:
    """A ``compute_loss_func(outputs, labels, num_items_in_batch)`` for ``transformers.Trainer``.

    Args:
        loss: a loss of :mod:`dece.losses` with ``reduction="mean"`` and ``ignore_index=-100``.
        is_encoder_decoder: False shifts the labels for a causal LM.
        epoch: called at each step (e.g. ``lambda: epoch_from_state(trainer.state)``).
        positions_scale: for a loss with a fixed denominator (``authors_compat``), the factor that turns
            one micro-batch's positions into the accumulated batch's (accumulation steps x processes).

    Raises:
        ConfigError: see :func:`check_trainer_loss`.
    """
    check_trainer_loss(loss)

    def compute_loss_func(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        target = labels if is_encoder_decoder else shift_for_causal_lm(labels, loss.ignore_index)
        return loss(
            logits,
            target.to(logits.device),
            epoch() if loss.epoch_aware else None,
            mean_denominator=step_denominator(loss, positions(labels, is_encoder_decoder), num_items_in_batch,
                                              positions_scale),
        )

    return compute_loss_func


class DeceTrainer(Trainer):
    """``Trainer(..., loss=get_loss("dece", alpha_base=0.985), epoch_mode="floor")``.

    Everything else is the stock Trainer: gradient accumulation, DDP (``torchrun`` /
    ``accelerate launch``), mixed precision, callbacks. ``fused_head=True`` computes the loss with
    :func:`dece.losses.hf_fused.fused_model_loss`: the output head and the loss run chunk by chunk and
    the logits are never materialised (same value and gradients; the model's outputs then carry no
    logits). ``group_by_length=True`` batches rows of similar length (input plus label tokens; the
    stock option looks at the input only, which misses the decoder side of a seq2seq model): shuffled
    groups of 50 batches are sorted by length, so little of a batch is padding.
    """

    def __init__(
        self, *args: Any, loss: TokenLoss, epoch_mode: str = "floor", fused_head: bool = False,
        group_by_length: bool = False, **kwargs: Any
    ) -> None:
        if epoch_mode not in EPOCH_MODES:
            raise ConfigError(f"epoch_mode must be one of {', '.join(EPOCH_MODES)}, got {epoch_mode!r}")
        if kwargs.get("compute_loss_func") is not None:
            raise ConfigError("DeceTrainer sets compute_loss_func from `loss`; pass one or the other")
        model = kwargs.get("model", args[0] if args else None)
        self.is_encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
        self.epoch_mode = epoch_mode
        self.dece_loss = loss
        self.fused_head = bool(fused_head)
        self.group_by_length = bool(group_by_length)
        kwargs["compute_loss_func"] = make_compute_loss_func(
            loss, is_encoder_decoder=self.is_encoder_decoder, epoch=self.current_epoch,
            positions_scale=self._positions_scale,
        )
        super().__init__(*args, **kwargs)

    def _positions_scale(self) -> float:
        """Micro-batch positions -> accumulated batch positions (for a loss with a fixed denominator).
        The Trainer does not divide a ``compute_loss_func`` loss by the accumulation steps, and
        multiplies it by the process count when tokens are averaged across devices."""
        steps = getattr(self, "current_gradient_accumulation_steps", None) or self.args.gradient_accumulation_steps
        processes = self.accelerator.num_processes if self.args.average_tokens_across_devices else 1
        return float(steps * processes)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.group_by_length or dataset is None:
            return super()._get_train_sampler(train_dataset)
        try:
            lengths = [len(row["input_ids"]) + len(row.get("labels", ())) for row in dataset]
        except (KeyError, TypeError, AttributeError):
            raise ConfigError("group_by_length needs training rows that are mappings with 'input_ids'") from None
        # megabatches of the global batch: the same order under N processes (each then takes every N-th
        # per-process batch) as in one
        global_batch = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return LengthGroupedSampler(global_batch, lengths=lengths)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        """The stock warnings, less the one for tied weights: a checkpoint stores a tied output head once
        (under the embedding's name), so its key is "missing" on every resume although the weights are
        identical. Other missing or unexpected keys are still reported."""
        tied = _tied_parameter_names(self.model)
        missing = [k for k in load_result.missing_keys if k not in tied]
        if len(missing) != len(load_result.missing_keys):
            self.model.tie_weights()
            load_result = load_result._replace(missing_keys=missing) if hasattr(load_result, "_replace") \
                else type(load_result)(missing, load_result.unexpected_keys)
        super()._issue_warnings_after_load(load_result)

    def current_epoch(self) -> float:
        """The epoch (counted from 1) the loss sees at this step."""
        return epoch_from_state(self.state, self.epoch_mode)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        if self.fused_head and "labels" in inputs:
            return self._fused_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.is_encoder_decoder and "decoder_input_ids" not in inputs and "labels" in inputs:
            prepare = getattr(self.accelerator.unwrap_model(model), "prepare_decoder_input_ids_from_labels", None)
            if prepare is None:
                raise ConfigError(
                    "this encoder-decoder model cannot build decoder_input_ids from labels; "
                    "give decoder_input_ids in the batch"
                )
            inputs = {**inputs, "decoder_input_ids": prepare(labels=inputs["labels"])}
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def _fused_loss(self, model, inputs, return_outputs, num_items_in_batch):
        """The fused path, normalised exactly as the stock ``compute_loss_func`` path is."""
        from dece.losses.hf_fused import fused_model_loss

        inputs = dict(inputs)
        labels = inputs.pop("labels")
        loss = fused_model_loss(
            model,
            inputs,
            labels,
            self.dece_loss,
            self.current_epoch() if self.dece_loss.epoch_aware else None,
            mean_denominator=step_denominator(self.dece_loss, positions(labels, self.is_encoder_decoder),
                                              num_items_in_batch, self._positions_scale),
        )
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; the count is global
        return (loss, None) if return_outputs else loss


def _tied_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that share their storage with another parameter (tied weights)."""
    by_storage: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        by_storage.setdefault(param.data_ptr(), []).append(name)
    return {name for names in by_storage.values() if len(names) > 1 for name in names}
