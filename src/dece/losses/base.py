"""The module front shared by every loss: argument checks, flattening, masking and reduction.

A loss subclasses :class:`TokenLoss` and states only its per-chunk math in :meth:`TokenLoss.row_math`;
:mod:`dece.losses.engine` does the rest. Semantics follow ``torch.nn.functional.cross_entropy``:
logits ``(..., V)``, integer targets ``(...)``, ``ignore_index`` positions contribute nothing, and
``reduction`` is ``"mean"`` (over non-ignored targets), ``"sum"`` or ``"none"``.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from dece.errors import ConfigError
from dece.losses._checks import check_reduction, flatten_inputs
from dece.losses.engine import RowMath, chunked_row_loss, triton_installed


class TokenLoss(nn.Module):
    """Base of the loss family. ``summary``: one line for ``dece losses``; ``epoch_aware`` losses use the
    ``epoch`` passed to ``forward``;
    ``refused_parameters`` are parent parameters a subclass does not accept; ``backends`` are the values
    its ``backend`` parameter takes (``"auto"`` and ``"torch"``; a loss whose row math has a device kernel
    adds ``"triton"``).

    What the rest of dece asks of a loss is declared here, never read from its name:
    ``plain_ce`` (the undefended baseline: an arm with it can lend its model to input defenses and
    serve as a data defense's reference), ``deceptive`` (DeCE's bounded loss with an alpha schedule,
    ``alpha_at``: its per-row losses feed ``dece_filter`` and the audit's ``rank`` score), ``adaptive``
    (the schedule starts from the clean validation loss, ``observe``: DeCE-auto)."""

    summary: str = ""
    epoch_aware = False
    plain_ce = False
    deceptive = False
    adaptive = False
    refused_parameters: tuple[str, ...] = ()
    backends: tuple[str, ...] = ("auto", "torch")

    def __init__(
        self,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        check_finite: bool = False,
        chunk_size: int | None = None,
        inplace_backward: bool = True,
        backend: str = "auto",
    ) -> None:
        """``chunk_size``: rows processed at once (default ~2M elements a chunk). ``inplace_backward``:
        see :mod:`dece.losses.engine` (False allows ``retain_graph``/``gradcheck``). ``backend``:
        ``"torch"`` (the chunked PyTorch math), ``"triton"`` (one fused kernel per row, CUDA only;
        DeCE and DeCE-auto have one, :mod:`dece.losses.triton_dece`) or ``"auto"`` (the kernel where it
        runs: a loss that has one, CUDA logits, triton installed; else the PyTorch math)."""
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.reduction = check_reduction(reduction)
        self.check_finite = bool(check_finite)
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral)
                                       or chunk_size < 1):
            raise ConfigError(f"chunk_size must be a whole number of rows >= 1, got {chunk_size!r}")
        self.chunk_size = chunk_size
        self.inplace_backward = bool(inplace_backward)
        if backend not in self.backends:
            raise ConfigError(
                f"backend must be one of {', '.join(self.backends)} for {type(self).__name__}, got {backend!r}"
            )
        if backend == "triton" and not triton_installed():
            raise ConfigError("backend='triton' needs the triton package (pip install 'dece[triton]'; CUDA builds of "
                              "torch ship it)")
        self.backend = backend

    def row_math(self, vocab: int, epoch: float | None) -> RowMath:
        raise NotImplementedError

    def default_denominator(self, target: torch.Tensor) -> float | None:
        """Divisor of ``reduction="mean"``; None means the number of non-ignored targets."""
        return None

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        epoch: float | None = None,
        *,
        mean_denominator: float | None = None,
    ) -> torch.Tensor:
        """``mean_denominator`` overrides the divisor of ``reduction="mean"`` (the Trainer integration
        passes ``num_items_in_batch`` so that gradient accumulation equals the large batch)."""
        z, y = flatten_inputs(logits, target, self.ignore_index, check_finite=self.check_finite)
        if mean_denominator is None:
            mean_denominator = self.default_denominator(y)
        out = chunked_row_loss(
            z,
            y,
            self.row_math(z.shape[1], epoch),
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            denominator=mean_denominator,
            chunk_rows=self.chunk_size,
            inplace_backward=self.inplace_backward,
            backend=self.backend,
        )
        return out.view(target.shape) if self.reduction == "none" else out

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
