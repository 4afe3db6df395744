"""Hugging Face Trainer integration of the loss family."""

from dece.training.trainer import DeceTrainer, epoch_from_state, make_compute_loss_func

__all__ = ["DeceTrainer", "epoch_from_state", "make_compute_loss_func"]
