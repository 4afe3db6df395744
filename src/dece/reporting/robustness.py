"""The robustness map of a sweep: where a defense holds and where it breaks. For every attack setting (a
combination of the grid's keys other than seeds and arms: attack variant, poisoning rate or row count,
duplicates...) and every arm, the ASR and the change of the clean metric against a reference arm, as
means over seeds; drawn as two heat maps (:func:`plot_robustness`), with a table of the settings where
a DeCE arm (a loss flagged ``deceptive``) lets the attack through (:func:`holes_table`)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dece.losses import LOSSES
from dece.reporting.collect import RunRecord
from dece.reporting.tables import SEED_KEYS, Table, metric_value

#: the arm the clean metric is compared with, the first present in a setting
REFERENCES = ("clean-ce", "poisoned-ce")


@dataclass(frozen=True)
class RobustnessMap:
    """``asr[i][j]`` (%, 0-100) and ``clean_delta[i][j]`` (points of ``metric``: arm minus ``reference``)
    for setting ``i`` and arm ``j``, means over the finished seeds (None: no finished run)."""

    settings: list[str]
    arms: list[str]
    asr: list[list[float | None]]
    clean_delta: list[list[float | None]]
    metric: str
    reference: list[str | None]  # per setting
    deceptive: frozenset[str]


def _setting(run: RunRecord) -> str:
    keys = [(k, v) for k, v in run.params.items() if k not in SEED_KEYS and k != "arms"]
    return ", ".join(f"{k}={v}" for k, v in keys) or run.attack


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def robustness_map(runs: Sequence[RunRecord], metric: str = "bleu") -> RobustnessMap | None:
    """The map of ``runs`` (the cells of a sweep), or None for fewer than two settings or two arms.

    Args:
        runs: run records (:func:`dece.reporting.collect.collect`).
        metric: the clean metric (a ``metrics.json`` key, e.g. ``bleu``, 0-100).
    """
    settings = list(dict.fromkeys(_setting(r) for r in runs))
    arms = list(dict.fromkeys(a.name for r in runs for a in r.arms))
    if len(settings) < 2 or len(arms) < 2:
        return None
    values: dict[tuple[str, str, str], list[float]] = {}
    losses: dict[str, str] = {}
    for run in runs:
        for arm in run.arms:
            losses[arm.name] = arm.loss
            for key in ("asr", metric):
                v = metric_value(arm.metrics or {}, key)
                if v is not None:
                    values.setdefault((_setting(run), arm.name, key), []).append(v)
    asr, delta, refs = [], [], []
    for s in settings:
        ref = next((r for r in REFERENCES if (s, r, metric) in values), None)
        ref_mean = _mean(values.get((s, ref, metric), [])) if ref else None
        asr.append([_mean(values.get((s, a, "asr"), [])) for a in arms])
        means = [_mean(values.get((s, a, metric), [])) for a in arms]
        delta.append([m - ref_mean if m is not None and ref_mean is not None else None for m in means])
        refs.append(ref)
    deceptive = frozenset(a for a, loss in losses.items() if loss in LOSSES and LOSSES.get(loss).deceptive)
    return RobustnessMap(settings, arms, asr, delta, metric, refs, deceptive)


def holes_table(m: RobustnessMap, threshold: float = 10.0) -> Table:
    """The settings where a DeCE arm's ASR exceeds ``threshold`` (%): where DeCE breaks."""
    rows = []
    for i, s in enumerate(m.settings):
        for j, arm in enumerate(m.arms):
            if arm in m.deceptive and m.asr[i][j] is not None and m.asr[i][j] > threshold:
                d = m.clean_delta[i][j]
                rows.append([s, arm, f"{m.asr[i][j]:.1f}", "-" if d is None else f"{d:+.2f}"])
    measured = any(arm in m.deceptive and m.asr[i][j] is not None
                   for i in range(len(m.settings)) for j, arm in enumerate(m.arms))
    held = " None: DeCE held in every measured setting." if measured else " No DeCE arm has finished yet."
    note = (f"Settings where an arm trained with a DeCE loss has ASR > {threshold:g}% (mean over seeds); "
            f"{m.metric} change against {'/'.join(REFERENCES)} of the same setting." + ("" if rows else held))
    return Table("Where DeCE breaks", ["setting", "arm", "ASR %", f"{m.metric} change"], rows, note=note)


def asr_table(m: RobustnessMap) -> Table:
    """The ASR heat map's numbers as a table (settings x arms)."""
    rows = [[s] + ["-" if v is None else f"{v:.1f}" for v in m.asr[i]] for i, s in enumerate(m.settings)]
    return Table("Robustness map: ASR %", ["setting"] + m.arms, rows,
                 note="Mean over seeds; the heat map beside it also shows each arm's clean-metric change.")


def plot_robustness(m: RobustnessMap, path: Path) -> Path:
    """Two heat maps (settings x arms): ASR (0-100 %) and the clean metric's change (points)."""
    from dece.reporting.plots import _save, plt

    width = max(8.0, 1.2 * len(m.arms) * 2)
    fig, axes = plt.subplots(1, 2, figsize=(width, 1.0 + 0.45 * len(m.settings)), layout="constrained")
    deltas = [abs(v) for row in m.clean_delta for v in row if v is not None] or [1.0]
    span = max(1.0, max(deltas))
    for ax, grid, title, cmap, lim in ((axes[0], m.asr, "ASR %", "Reds", (0, 100)),
                                       (axes[1], m.clean_delta, f"{m.metric} change vs reference", "RdBu", (-span, span))):
        data = [[float("nan") if v is None else v for v in row] for row in grid]
        ax.imshow(data, cmap=cmap, vmin=lim[0], vmax=lim[1], aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, "-" if v is None else f"{v:.0f}" if title == "ASR %" else f"{v:+.1f}",
                        ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(m.arms)), m.arms, rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(len(m.settings)), m.settings if ax is axes[0] else [""] * len(m.settings), fontsize=7)
        ax.set_title(title, fontsize=10)
    return _save(fig, path)
