r"""DeCE-auto: DeCE whose alpha schedule starts when *early learning* ends, so no per-task tuning of
when to start blending is needed.

Early learning (the paper's core observation): a model fits the clean majority of its data first and
the backdoor's payload later. The clean-validation loss tells when the first phase is over: it stops
improving. DeCE-auto trains with alpha = 1 (label-smoothed CE, :math:`q = p`) until then, and decays
alpha from there:

.. math::

    \alpha_e = 1 \quad (e \le T), \qquad \alpha_e = \alpha_{base}^{\,e - T} \quad (e > T)

where :math:`e` is the epoch (counted from 1) and :math:`T` the epoch at whose end the trigger fired.
The trigger (:class:`PlateauTrigger`) is early stopping's rule: with ``best`` the lowest validation
loss seen so far, epoch :math:`e` *improves* when ``val_loss < best * (1 - min_delta)``; the trigger
fires at the end of the ``patience``-th consecutive epoch that does not improve. Defaults:
``patience = 1``, ``min_delta = 0.01`` (a 1% relative improvement), ``alpha_base = 0.9``
(faster than fixed DeCE's 0.985: alpha is held at 1 through the early phase, so it has fewer epochs
left to decay in). ``max_wait`` (default None) fires the trigger at the end of that epoch at the
latest.

The schedule needs the validation loss at each epoch end: call ``loss.observe(epoch, val_loss)``
(the experiment runner does it with a callback on ``PreparedData.valid``). It is a pure function of
the sequence of observations, hence deterministic, and ``schedule.replay(history)`` rebuilds it
after a resume. :class:`DeCEAutoLoss` keeps its schedule in a separate object, so shallow copies of
the loss (the Trainer integration makes one) share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from dece.errors import ConfigError
from dece.losses._checks import check_unit_interval
from dece.losses.dece import DEFAULT_LABEL_SMOOTHING, DeCELoss

AUTO_ALPHA_BASE = 0.9
AUTO_PATIENCE = 1
AUTO_MIN_DELTA = 0.01


@dataclass
class PlateauTrigger:
    """Fires once, at the end of the ``patience``-th consecutive epoch whose validation loss is not
    below ``best * (1 - min_delta)`` (or at the end of epoch ``max_wait``). Pure logic, no torch."""

    patience: int = AUTO_PATIENCE
    min_delta: float = AUTO_MIN_DELTA
    max_wait: int | None = None
    best: float | None = None
    bad_epochs: int = 0
    triggered_at: int | None = None
    history: list[tuple[int, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise ConfigError(f"patience must be an integer >= 1, got {self.patience!r}")
        check_unit_interval("min_delta", self.min_delta, low_open=False, high_open=True)
        if self.max_wait is not None and (isinstance(self.max_wait, bool) or not isinstance(self.max_wait, int) or self.max_wait < 1):
            raise ConfigError(f"max_wait must be an integer >= 1 or None, got {self.max_wait!r}")

    def observe(self, epoch: int, val_loss: float) -> bool:
        """Records the validation loss measured at the end of ``epoch``; True when this fires the trigger.

        Epochs must come in increasing order; an epoch already observed is ignored (a resumed run
        may report it twice). A non-finite loss counts as no improvement."""
        epoch = int(epoch)
        if self.history and epoch <= self.history[-1][0]:
            return False
        val_loss = float(val_loss)
        self.history.append((epoch, val_loss))
        if self.triggered_at is not None:
            return False
        if math.isfinite(val_loss) and (self.best is None or val_loss < self.best * (1.0 - self.min_delta)):
            self.best, self.bad_epochs = val_loss, 0
        else:  # as in early stopping, ``best`` moves only on an improvement of at least min_delta
            self.bad_epochs += 1
        if self.bad_epochs >= self.patience or (self.max_wait is not None and epoch >= self.max_wait):
            self.triggered_at = epoch
            return True
        return False

    def reset(self) -> None:
        self.best, self.bad_epochs, self.triggered_at = None, 0, None
        self.history = []

    def replay(self, history: Iterable[tuple[int, float]]) -> None:
        """Resets and observes ``history`` again (e.g. the measurements kept before a resume)."""
        self.reset()
        for epoch, val_loss in history:
            self.observe(epoch, val_loss)


def auto_alpha(alpha_base: float, epoch: float, triggered_at: int | None) -> float:
    """alpha = 1 up to and including epoch ``triggered_at``, then ``alpha_base ** (epoch - triggered_at)``."""
    if not float(epoch) >= 1:
        raise ValueError(f"epoch is counted from 1, got {epoch!r}")
    if triggered_at is None or epoch <= triggered_at:
        return 1.0
    return float(alpha_base) ** (float(epoch) - triggered_at)


class DeCEAutoLoss(DeCELoss):
    """DeCE with the alpha schedule of the module docstring::

        loss_fn = DeCEAutoLoss()                         # alpha_base=0.9, patience=1, min_delta=0.01
        loss = loss_fn(logits, labels, epoch=epoch)      # as DeCELoss; alpha = 1 before the trigger
        ...
        loss_fn.observe(epoch, clean_validation_loss)    # at each epoch end

    ``triggered_at`` is the epoch whose end fired the trigger (None before).
    """

    summary = "DeCE whose alpha stays 1 until the clean validation loss plateaus, then decays"
    refused_parameters = ("alpha",)
    adaptive = True

    def __init__(
        self,
        *,
        alpha_base: float = AUTO_ALPHA_BASE,
        patience: int = AUTO_PATIENCE,
        min_delta: float = AUTO_MIN_DELTA,
        max_wait: int | None = None,
        label_smoothing: float = DEFAULT_LABEL_SMOOTHING,
        authors_compat: bool = False,
        **common,
    ) -> None:
        if "alpha" in common:  # a fixed alpha would defeat the schedule
            raise ConfigError("dece_auto schedules alpha itself; for a fixed alpha use the 'dece' loss with alpha=")
        super().__init__(alpha_base=alpha_base, label_smoothing=label_smoothing, authors_compat=authors_compat, **common)
        self.schedule = PlateauTrigger(patience=patience, min_delta=min_delta, max_wait=max_wait)

    @property
    def triggered_at(self) -> int | None:
        return self.schedule.triggered_at

    @property
    def last_val_loss(self) -> float | None:
        return self.schedule.history[-1][1] if self.schedule.history else None

    def observe(self, epoch: int, val_loss: float) -> bool:
        """Feeds the clean-validation loss measured at the end of ``epoch`` (counted from 1)."""
        return self.schedule.observe(epoch, val_loss)

    def alpha_at(self, epoch: float | None) -> float:
        if epoch is None:
            raise ValueError("DeCEAutoLoss needs the epoch (counted from 1)")
        return auto_alpha(self.alpha_base, epoch, self.schedule.triggered_at)

    def extra_repr(self) -> str:
        s = self.schedule
        return (f"alpha_base={self.alpha_base}, patience={s.patience}, min_delta={s.min_delta}, "
                f"max_wait={s.max_wait}, label_smoothing={self.label_smoothing}, triggered_at={s.triggered_at}")
