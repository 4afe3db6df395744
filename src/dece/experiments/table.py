"""The paper-style results table: one row per arm, clean-quality metrics then ASR and FTR."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

LABELS = {
    "bleu": "BLEU",
    "bleu_paper": "BLEU (sent.)",
    "bleu_codexglue": "BLEU (CodeXGLUE)",
    "bleu_dece_authors": "BLEU (DeCE authors)",
    "codebleu": "CodeBLEU",
    "exact_match": "EM",
    "exact_match_ws": "EM (ws)",
}


def results_table(results: Sequence[tuple[str, Mapping[str, Any]]], metrics: Sequence[str]) -> str:
    """Markdown table of ``[(arm name, metrics.json contents)]``; ASR/FTR as ``rate% (hits/total)``.
    Where an arm removed training rows (a data defense), two more columns: ``Removed`` as
    ``removed (clean removed)`` and ``Det. P / R`` the precision and recall of the removal in %."""
    has_attack = any("asr" in m for _, m in results)
    has_removal = any("precision" in (m.get("defense") or {}) for _, m in results)
    header = ["arm", *(LABELS.get(m, m) for m in metrics)] + (["ASR", "FTR"] if has_attack else [])
    header += ["Removed", "Det. P / R"] if has_removal else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, m in results:
        cells = [name] + [f"{m[k]:.2f}" if k in m else "-" for k in metrics]
        if has_attack:
            cells += [_rate(m.get("asr")), _rate(m.get("ftr"))]
        if has_removal:
            cells += removal_cells(m.get("defense") or {})
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def removal_cells(d: Mapping[str, Any]) -> list[str]:
    """``Removed`` and ``Det. P / R`` cells of a data defense's report (dashes for other arms)."""
    if "precision" not in d:
        return ["-", "-"]
    pct = [("-" if d[k] is None else f"{100 * d[k]:.1f}") for k in ("precision", "recall")]
    return [f"{d['removed']} ({d['clean_removed']} clean)", " / ".join(pct)]


def _rate(r: Mapping[str, Any] | None) -> str:
    if not r:
        return "-"
    return f"{r['rate']:.1f}% ({r['hits']}/{r['total']})"
