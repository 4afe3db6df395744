"""The paper-style results table: one row per arm, clean-quality metrics then ASR and FTR."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

LABELS = {
    "bleu": "BLEU",
    "bleu_paper": "BLEU (paper)",
    "codebleu": "CodeBLEU",
    "exact_match": "EM",
    "exact_match_ws": "EM (ws)",
}


def results_table(results: Sequence[tuple[str, Mapping[str, Any]]], metrics: Sequence[str]) -> str:
    """Markdown table of ``[(arm name, metrics.json contents)]``; ASR/FTR as ``rate% (hits/total)``."""
    has_attack = any("asr" in m for _, m in results)
    header = ["arm", *(LABELS.get(m, m) for m in metrics)] + (["ASR", "FTR"] if has_attack else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, m in results:
        cells = [name] + [f"{m[k]:.2f}" if k in m else "-" for k in metrics]
        if has_attack:
            cells += [_rate(m.get("asr")), _rate(m.get("ftr"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _rate(r: Mapping[str, Any] | None) -> str:
    if not r:
        return "-"
    return f"{r['rate']:.1f}% ({r['hits']}/{r['total']})"
