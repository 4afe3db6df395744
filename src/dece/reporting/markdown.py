"""The Markdown report: paper-layout tables, per-run details, early-learning tables and plots, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dece.experiments.store import read_json, write_text_atomic
from dece.reporting.collect import RunRecord, collect
from dece.reporting.robustness import asr_table, holes_table, robustness_map
from dece.reporting.significance import significance_tables
from dece.reporting.tables import Table, detail_table, early_learning_table, paper_tables


def audit_table(run: RunRecord) -> Table | None:
    """The table of ``dece audit`` if it was run on this run folder."""
    path = run.dir / "audit" / "summary.json"
    if not path.exists():
        return None
    from dece.reporting.audit import summary_table

    return summary_table(read_json(path), f"{run.name}: poisoned-row audit",
                         "dece audit: training rows ranked by suspicious learning dynamics; flagged rows in audit/ARM.csv.")


def report_sections(runs: Sequence[RunRecord], versus: Sequence[str] = ()) -> list[tuple[str, list[Table]]]:
    """(section title, tables) in report order; ``versus``: arms tested against every other arm besides DeCE."""
    sections = [("Results (paper layout)", paper_tables(runs))]
    tests = significance_tables(runs, versus)
    if tests:
        sections.append(("Paired tests against each arm", tests))  # each table's title names its tested arm
    landscape = robustness_map(runs)
    if landscape is not None:
        sections.append(("Robustness map", [holes_table(landscape), asr_table(landscape)]))
    sections.append(("All metrics", [detail_table(r) for r in runs]))
    early = [t for t in (early_learning_table(r) for r in runs) if t is not None]
    if early:
        sections.append(("Early learning", early))
    audits = [t for t in (audit_table(r) for r in runs) if t is not None]
    if audits:
        sections.append(("Poisoned-row audit", audits))
    return sections


def render_markdown(title: str, sections: list[tuple[str, list[Table]]], plots: dict[str, dict[str, Path]],
                    base: Path, intro: str = "") -> str:
    """``plots``: run name -> {kind: png path}; image links are relative to ``base``; ``intro``: a paragraph
    under the title."""
    out = [f"# {title}", ""] + ([intro, ""] if intro else [])
    for name, tables in sections:
        out += [f"## {name}", ""]
        for t in tables:
            out.append(t.to_markdown())
    if plots:
        out += ["## Plots", ""]
        for run, kinds in plots.items():
            out += [f"### {run}", ""]
            for kind, path in kinds.items():
                out += [f"![{run} {kind}]({path.relative_to(base).as_posix()})", ""]
    return "\n".join(out)


def write_results_markdown(run_dir: Path) -> Path:
    """``RUN_DIR/results.md`` of a sweep: the paper-layout tables over its finished cells."""
    runs = collect(run_dir)
    text = "\n".join(t.to_markdown() for t in [*paper_tables(runs), *significance_tables(runs)])
    path = Path(run_dir) / "results.md"
    write_text_atomic(path, f"# {Path(run_dir).name}\n\n{text}")
    return path
