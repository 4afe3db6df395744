"""Reports: ``dece report RUN_DIR`` turns a run or sweep folder into Markdown tables in the paper's
layout, learning-dynamics plots (PNG) and one self-contained HTML page, under ``RUN_DIR/report/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from dece.errors import ConfigError

from dece.experiments.store import write_text_atomic
from dece.reporting.collect import ArmRecord, RunRecord, collect, missing_cells
from dece.reporting.html import render_html
from dece.reporting.markdown import render_markdown, report_sections
from dece.reporting.plots import run_plots
from dece.reporting.robustness import plot_robustness, robustness_map
from dece.reporting.tables import Table, paper_tables


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", name)


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, *, plots: bool = True,
                 versus: Sequence[str] = ()) -> dict[str, Any]:
    """Writes ``report.md``, ``report.html`` and the PNGs to ``out_dir`` (default ``RUN_DIR/report``);
    returns their paths (``markdown``, ``html``, ``plots``: run -> {kind: path}) and counts (``runs``: started
    runs or sweep cells; ``arms`` / ``arms_done``: their arms, and those with results; ``not_started``: the
    sweep's cells that have not started, whose arms are not in ``arms``; ``gone``: the names of cells
    ``sweep.json`` marks done whose folder is missing). ``versus``: arms given paired tests against every
    other arm, besides DeCE's (:func:`dece.reporting.significance.significance_tables`).

    Raises:
        ConfigError: an arm of ``versus`` is in no run (before anything is written).
    """
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    runs = collect(run_dir)
    known = list(dict.fromkeys(a.name for r in runs for a in r.arms))
    for arm in versus:
        if not arm.strip():
            raise ConfigError(f"--versus: an arm name, got {arm!r}")
        if arm not in known:
            raise ConfigError(f"--versus {arm}: no arm of that name in {run_dir}; arms: {', '.join(known) or 'none'}")
    pngs = {r.name: run_plots(r, out, _stem(r.name)) for r in runs} if plots else {}
    pngs = {k: v for k, v in pngs.items() if v}
    landscape = robustness_map(runs) if plots else None
    if landscape is not None:  # a sweep over attack settings: the heat maps first
        pngs = {"robustness map": {"ASR and clean change": plot_robustness(landscape, out / "robustness.png")}, **pngs}
    sections = report_sections(runs, versus)
    title = f"dece report: {run_dir.name}"
    arms = [a for r in runs for a in r.arms]
    done = sum(a.metrics is not None for a in arms)
    waiting, gone = missing_cells(run_dir)
    pending = missing_note(len(waiting), gone)
    intro = (f"{len(runs)} run(s) from {run_dir}, {done} of {len(arms)} arm(s) finished{pending}. BLEU and CodeBLEU are measured on clean test inputs, ASR on "
             "triggered test inputs; plots show the per-epoch dynamics recorded on small fixed eval subsets.")
    md = out / "report.md"
    write_text_atomic(md, render_markdown(title, sections, pngs, out, intro))
    page = out / "report.html"
    write_text_atomic(page, render_html(title, sections, pngs, intro))
    return {"markdown": md, "html": page, "plots": pngs, "runs": len(runs), "arms": len(arms), "arms_done": done,
            "not_started": len(waiting), "gone": gone}


def missing_note(not_started: int, gone: list[str]) -> str:
    """`` (N more cell(s) of the sweep not started; M marked done whose folder is gone: NAME, ...)``, or ``""``."""
    parts = [f"{not_started} more cell(s) of the sweep not started"] if not_started else []
    if gone:
        shown = ", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
        parts.append(f"{len(gone)} marked done in sweep.json whose folder is gone (moved or deleted?): {shown}")
    return f" ({'; '.join(parts)})" if parts else ""


__all__ = ["ArmRecord", "RunRecord", "Table", "build_report", "collect", "missing_note", "paper_tables"]
