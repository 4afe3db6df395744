"""Learning-dynamics plots (matplotlib, PNG) of one run, from its arms' ``dynamics.jsonl``.

* :func:`plot_quality` — clean BLEU and ASR per epoch, one line per arm: early learning shows as BLEU
  reaching its plateau epochs before ASR climbs (under CE);
* :func:`plot_losses` — CE on clean vs poisoned training rows, on the first payload token, and on the
  clean validation split, per epoch;
* :func:`plot_alpha` — DeCE's alpha per epoch (DeCE-auto: 1 until its trigger, marked).

A DeCE-auto arm's trigger epoch is drawn as a dotted vertical line in its colour on every plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dece.reporting.collect import ArmRecord, RunRecord  # noqa: E402

COLORS = plt.get_cmap("tab10").colors


def _series(arm: ArmRecord, key: str) -> tuple[list[int], list[float]]:
    pts = [(r["epoch"], r[key]) for r in arm.dynamics if r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def _mark_trigger(ax, arm: ArmRecord, color) -> None:
    if arm.triggered_at is not None:
        ax.axvline(arm.triggered_at, color=color, linestyle=":", linewidth=1)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _legend(fig, axes) -> None:
    handles, labels = {}, []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    if labels:
        fig.legend([handles[x] for x in labels], labels, loc="outside lower center", ncol=min(4, len(labels)),
                   fontsize=8, frameon=False)


def _style(ax, title: str, ylabel: str, **kw) -> None:
    ax.set(title=title, xlabel="epoch", ylabel=ylabel, **kw)
    ax.title.set_fontsize(10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if not any(len(line.get_xdata()) and not str(line.get_label()).startswith("_") for line in ax.lines):
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")


def _arms(run: RunRecord) -> Sequence[tuple[ArmRecord, tuple]]:
    return [(a, COLORS[i % len(COLORS)]) for i, a in enumerate(run.arms) if a.dynamics]


def plot_quality(run: RunRecord, path: Path) -> Path | None:
    arms = _arms(run)
    if not arms:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    for arm, c in arms:
        ax1.plot(*_series(arm, "bleu"), marker="o", ms=3, color=c, label=arm.name)
        ax2.plot(*_series(arm, "asr"), marker="o", ms=3, color=c, label=arm.name)
        _mark_trigger(ax1, arm, c)
        _mark_trigger(ax2, arm, c)
    _style(ax1, "clean BLEU per epoch", "BLEU")
    _style(ax2, "attack success rate per epoch", "ASR (%)", ylim=(-2, 102))
    fig.suptitle(run.name, fontsize=10)
    _legend(fig, (ax1, ax2))
    return _save(fig, path)


def plot_losses(run: RunRecord, path: Path) -> Path | None:
    arms = _arms(run)
    if not arms:
        return None
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4.2), layout="constrained")
    for arm, c in arms:
        ax1.plot(*_series(arm, "loss_clean"), color=c, label=arm.name)
        ax1.plot(*_series(arm, "loss_poisoned"), color=c, linestyle="--")
        ax2.plot(*_series(arm, "loss_payload"), color=c, marker="o", ms=3, label=arm.name)
        ax3.plot(*_series(arm, "val_loss"), color=c, marker="o", ms=3, label=arm.name)
        for ax in (ax1, ax2, ax3):
            _mark_trigger(ax, arm, c)
    _style(ax1, "train rows: clean (solid) vs poisoned (dashed)", "mean token CE")
    _style(ax2, "first payload token of poisoned rows", "CE")
    _style(ax3, "clean validation rows", "token CE")
    fig.suptitle(run.name, fontsize=10)
    _legend(fig, (ax1, ax2, ax3))
    return _save(fig, path)


def plot_alpha(run: RunRecord, path: Path) -> Path | None:
    arms = [(a, c) for a, c in _arms(run) if any(r.get("alpha") is not None for r in a.dynamics)]
    if not arms:
        return None
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for arm, c in arms:
        ax.plot(*_series(arm, "alpha"), color=c, marker="o", ms=3, label=arm.name)
        _mark_trigger(ax, arm, c)
    _style(ax, f"{run.name}: DeCE alpha per epoch", "alpha")
    ax.legend(fontsize=8)
    return _save(fig, path)


PLOTS = {"quality": plot_quality, "losses": plot_losses, "alpha": plot_alpha}


def run_plots(run: RunRecord, out_dir: Path, stem: str) -> dict[str, Path]:
    """Every plot of ``run`` that has data, as ``out_dir/<stem>-<kind>.png``."""
    out = {}
    for kind, fn in PLOTS.items():
        p = fn(run, Path(out_dir) / f"{stem}-{kind}.png")
        if p is not None:
            out[kind] = p
    return out
