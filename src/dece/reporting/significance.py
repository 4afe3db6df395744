"""Is a difference between DeCE and another arm real? Paired tests over seeds and test rows.

Two arms of one cell (same data, same seed) saw the same test rows, so their outcomes pair row by row;
pooling the pairs of every seed of a grid group gives the test its power:

* **ASR**: the exact McNemar test on the triggered rows' payload verdicts (``payload`` in
  ``predictions.jsonl``): of the discordant pairs, ``b`` rows carry the payload under DeCE only and
  ``c`` under the other arm only; p = the two-sided exact binomial test of ``min(b, c)`` in ``b + c``
  at 1/2 (McNemar 1947, exact form; ``scipy.stats.binomtest``).
* **Clean quality**: the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences
  dropped) on the per-row sentence BLEU (:func:`dece.evaluation.metrics.bleu_paper` of one row) of the
  clean test rows.

A difference is called real at p < 0.05; the tables print the p-values so a reader can apply another
level or a correction for the number of comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from scipy.stats import binomtest, wilcoxon

from dece.evaluation.metrics import bleu_paper
from dece.experiments.store import read_records
from dece.losses import LOSSES
from dece.reporting.collect import RunRecord
from dece.reporting.tables import SEED_KEYS, AXIS_KEYS, Table

ALPHA = 0.05


@dataclass(frozen=True)
class PairedResult:
    """One comparison: mean difference (DeCE minus other) and its p-value; ``n`` pairs."""

    diff: float
    p: float
    n: int

    def cell(self, unit: str = "") -> str:
        """``+1.23 pp (p=0.04, n=495)*``: the difference, its p-value, the pairs, ``*`` when p < ``ALPHA``."""
        mark = "*" if self.p < ALPHA else ""
        return f"{self.diff:+.2f}{unit} (p={self.p:.2g}, n={self.n}){mark}"


def mcnemar_exact(ours: Sequence[bool], other: Sequence[bool]) -> PairedResult:
    """Exact McNemar test on paired binary outcomes (two-sided binomial test on the discordant pairs;
    McNemar, Psychometrika 1947), e.g. the same triggered rows under two models.

    Args:
        ours: one outcome per row (True: the payload was emitted).
        other: the other model's outcomes on the same rows.

    Returns:
        A :class:`PairedResult`: ``diff`` = our rate minus theirs in points (%), ``p`` the p-value, ``n`` rows.

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    if len(ours) != len(other) or not ours:
        raise ValueError(f"need paired, non-empty outcomes, got {len(ours)} and {len(other)}")
    b = sum(1 for x, y in zip(ours, other) if x and not y)
    c = sum(1 for x, y in zip(ours, other) if y and not x)
    p = 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)
    return PairedResult(100.0 * (b - c) / len(ours), p, len(ours))


def wilcoxon_paired(ours: Sequence[float], other: Sequence[float]) -> PairedResult:
    """Wilcoxon signed-rank test on paired scores (zero differences dropped; scipy's two-sided test),
    e.g. per-row sentence BLEU of two models on the same test rows.

    Args:
        ours: one score per row.
        other: the other model's scores on the same rows.

    Returns:
        A :class:`PairedResult`: ``diff`` = mean of ours minus other (the scores' unit), ``p``, ``n`` rows.

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    if len(ours) != len(other) or not ours:
        raise ValueError(f"need paired, non-empty scores, got {len(ours)} and {len(other)}")
    diffs = [x - y for x, y in zip(ours, other)]
    p = 1.0 if not any(diffs) else float(wilcoxon(diffs, zero_method="wilcox").pvalue)
    return PairedResult(sum(diffs) / len(diffs), p, len(diffs))


def _rows(run: RunRecord, arm: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["split"], str(r.get("id"))): r for r in read_records(run.dir / "arms" / arm / "predictions.jsonl")}


def _seed_key(run: RunRecord) -> tuple:
    """What identifies the data and training seed of a cell, whichever arms it holds."""
    return tuple((k, str(v)) for k, v in sorted(run.params.items()) if k != "arms")


def _outputs(runs: Sequence[RunRecord], arm: str) -> dict[tuple, dict[str, Any]]:
    """``(cell seed key, split, row id) -> prediction row`` of ``arm`` over the finished cells holding it."""
    out: dict[tuple, dict[str, Any]] = {}
    for run in runs:
        if any(a.name == arm and a.metrics for a in run.arms):
            out.update({(_seed_key(run), *key): row for key, row in _rows(run, arm).items()})
    return out


def _pairs(runs: Sequence[RunRecord], ours: str, other: str) -> tuple[list, list, list, list]:
    """(payload verdicts of ours, of other) on triggered rows and (sentence BLEU of ours, of other) on
    clean rows, paired by (seed, row id): the two arms may sit in the same cell or in cells of a sweep
    that differ only in their arms."""
    trig_a, trig_b, bleu_a, bleu_b = [], [], [], []
    a, b = _outputs(runs, ours), _outputs(runs, other)
    for key in sorted(a.keys() & b.keys()):
        split = key[1]
        if split == "triggered" and "payload" in a[key] and "payload" in b[key]:
            trig_a.append(bool(a[key]["payload"]))
            trig_b.append(bool(b[key]["payload"]))
        elif split == "clean":
            bleu_a.append(bleu_paper([a[key]["tgt"]], [a[key]["pred"]]))
            bleu_b.append(bleu_paper([b[key]["tgt"]], [b[key]["pred"]]))
    return trig_a, trig_b, bleu_a, bleu_b


def significance_tables(runs: Sequence[RunRecord], versus: Sequence[str] = ()) -> list[Table]:
    """Per group of cells that differ only in seeds (as the paper tables group them), DeCE (the first arm
    trained with the fixed-schedule DeCE loss; without one, the first DeCE-auto arm, e.g. DeCE with a CE
    warm-up) against every other arm: ΔBLEU and ΔASR with their paired p-values; then the same for each arm
    named in ``versus`` (e.g. a filter defense against clean CE), in every group that holds it.

    Args:
        runs: the run folders or sweep cells (:func:`dece.reporting.collect.collect`).
        versus: arm names to test against every other arm too; an arm a group lacks is skipped there.

    Returns:
        One :class:`~dece.reporting.tables.Table` per (group, tested arm); none for a group without a DeCE arm
        (unless ``versus`` names one of its arms) or with a single arm.
    """
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        key = tuple((k, str(v)) for k, v in run.params.items() if k not in SEED_KEYS and k not in AXIS_KEYS)
        groups.setdefault(key, []).append(run)
    tables = []
    for key, members in groups.items():
        arms = list(dict.fromkeys(a.name for r in members for a in r.arms))
        losses = {a.name: a.loss for r in members for a in r.arms}
        deceptive = [a for a in arms if LOSSES.get(losses[a]).deceptive]  # a fixed schedule first, else DeCE-auto
        ours = next((a for a in deceptive if not LOSSES.get(losses[a]).adaptive), deceptive[0] if deceptive else None)
        tested = list(dict.fromkeys([*([ours] if ours else []), *(a for a in versus if a in arms)]))
        tables += [t for t in (_paired_table(members, arm, arms, key) for arm in tested) if t is not None]
    return tables


def _paired_table(members: Sequence[RunRecord], ours: str, arms: Sequence[str], key: tuple) -> Table | None:
    """``ours`` against every other arm of one group of cells (``key``: the group's settings)."""
    attacks = list(dict.fromkeys(r.attack for r in members))
    rows = []
    for other in (a for a in arms if a != ours):
        row = [other]
        for atk in attacks:
            ta, tb, ba, bb = _pairs([r for r in members if r.attack == atk], ours, other)
            row.append(wilcoxon_paired(ba, bb).cell() if ba else "-")
            row.append(mcnemar_exact(ta, tb).cell(" pp") if ta else "-")
        rows.append(row)
    if not rows:
        return None
    header = ["vs arm"] + [f"{atk} {m}" for atk in attacks for m in ("ΔBLEU (sent.)", "ΔASR")]
    title = f"{ours} vs each arm" + (": " + ", ".join(f"{k} = {v}" for k, v in key) if key else "")
    note = (f"Δ = {ours} minus the arm, paired by test row over the seeds both arms finished (n: the pairs; '-': "
            "none). ΔBLEU: mean per-row sentence BLEU, Wilcoxon signed-rank test; ΔASR: points of attack success, "
            f"exact McNemar test on the triggered rows. * marks p < {ALPHA}.")
    short = ["vs arm"] + [m for _ in attacks for m in ("ΔBLEU", "ΔASR")]
    return Table(title, header, rows, [("", 1)] + [(atk, 2) for atk in attacks], note, short)
