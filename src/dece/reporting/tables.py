"""Tables as data, rendered to Markdown or HTML; the paper's layout built from run records."""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from dece.experiments.table import removal_cells
from dece.losses import LOSSES
from dece.reporting.collect import RunRecord

#: (column label, how to read it from metrics.json)
PAPER_METRICS = (("BLEU", "bleu"), ("CodeBLEU", "codebleu"), ("ASR", "asr"))
#: grid keys averaged over (mean ± std) rather than tabulated apart
SEED_KEYS = ("seed", "attack.seed")
#: grid keys that become the table's rows (arms) and column groups (attacks)
AXIS_KEYS = ("arms", "attack.name")


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    #: optional top header row for HTML: (label, number of columns spanned)
    groups: list[tuple[str, int]] = field(default_factory=list)
    note: str = ""
    #: optional header for HTML under ``groups`` (e.g. "BLEU" under "badpre" rather than "badpre BLEU")
    short_header: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", ""] if self.title else []
        lines += ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        e = html.escape
        out = [f"<h3>{e(self.title)}</h3>"] if self.title else []
        out.append("<table>")
        if self.groups:
            out.append("<tr>" + "".join(f'<th colspan="{n}" class="group">{e(g)}</th>' for g, n in self.groups) + "</tr>")
        header = self.short_header if self.groups and self.short_header else self.header
        out.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for r in self.rows:
            out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
        out.append("</table>")
        if self.note:
            out.append(f'<p class="note">{e(self.note)}</p>')
        return "\n".join(out)


def metric_value(metrics: dict[str, Any], key: str) -> float | None:
    v = metrics.get(key)
    if isinstance(v, dict):
        v = v.get("rate")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def _group_key(run: RunRecord) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(v)) for k, v in run.params.items() if k not in SEED_KEYS and k not in AXIS_KEYS)


def paper_tables(runs: Sequence[RunRecord]) -> list[Table]:
    """Rows = arms, columns = attack x (BLEU, CodeBLEU, ASR); one table per combination of the other
    grid keys; seeds (``seed``, ``attack.seed``) averaged as mean ± std over finished runs."""
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(_group_key(run), []).append(run)
    tables = []
    for key, members in groups.items():
        attacks = list(dict.fromkeys(r.attack for r in members))
        arms = list(dict.fromkeys(a.name for r in members for a in r.arms))
        present = [(label, k) for label, k in PAPER_METRICS
                   if any(a.metrics and metric_value(a.metrics, k) is not None for r in members for a in r.arms)]
        header = ["arm"] + [f"{atk} {label}" for atk in attacks for label, _ in present]
        rows, seeds = [], set()
        for arm in arms:
            row = [arm]
            for atk in attacks:
                for _, k in present:
                    vals: dict[Any, float] = {}  # one value per arm result: a cell that copied another's
                    for r in members:            # finished arm (same fingerprint) does not count it twice
                        for a in r.arms:
                            if r.attack == atk and a.name == arm and a.metrics:
                                v = metric_value(a.metrics, k)
                                if v is not None:
                                    seed = tuple((s, str(r.params.get(s))) for s in SEED_KEYS)
                                    vals[a.metrics.get("fingerprint") or (r.dir, seed)] = v
                                    seeds.add(seed)
                    row.append(_fmt(list(vals.values())))
            rows.append(row)
        title = ", ".join(f"{k} = {v}" for k, v in key) or (members[0].config.get("name", "") if len(members) == 1 else "all cells")
        note = "BLEU and CodeBLEU on clean test inputs, ASR (%) on triggered test inputs."
        if len(seeds) > 1:
            note += " Mean ± standard deviation over seeds."
        short = ["arm"] + [label for _ in attacks for label, _ in present]
        tables.append(Table(title, header, rows, [("", 1)] + [(atk, len(present)) for atk in attacks], note, short))
    return tables


def detail_table(run: RunRecord) -> Table:
    """Every metric of every arm of one run, ASR and FTR as ``rate% (hits/total)``; with defense arms,
    the defense and, for data defenses, the rows removed and the removal's precision / recall."""
    keys: list[str] = []
    for a in run.arms:
        for k, v in (a.metrics or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith("_seconds") and k not in keys:
                keys.append(k)
    rate_keys = [k for k in ("asr", "ftr") if any(a.metrics and k in a.metrics for a in run.arms)]
    has_defense = any(a.defense for a in run.arms)
    has_removal = any("precision" in ((a.metrics or {}).get("defense") or {}) for a in run.arms)
    header = ["arm", "loss", *(["defense"] if has_defense else []), *keys, *(k.upper() for k in rate_keys)]
    header += ["Removed", "Det. P / R"] if has_removal else []
    rows = []
    for a in run.arms:
        m = a.metrics or {}
        row = [a.name, a.loss, *([a.defense or "-"] if has_defense else [])]
        row += [f"{m[k]:.2f}" if k in m else "-" for k in keys]
        for k in rate_keys:
            r = m.get(k)
            row.append(f"{r['rate']:.1f}% ({r['hits']}/{r['total']})" if isinstance(r, dict) else "-")
        if has_removal:
            row += removal_cells(m.get("defense") or {})
        row.append(f"{m['train_seconds']:.0f}" if "train_seconds" in m else ("not finished" if not a.metrics else "-"))
        rows.append(row)
    return Table(f"{run.name}: all metrics", header + ["train s"], rows)


def _first_epoch(dyn: list[dict[str, Any]], pred) -> str:
    for r in dyn:
        if pred(r):
            return str(r["epoch"])
    return "never"


def early_learning_table(run: RunRecord) -> Table | None:
    """When clean quality plateaus vs when the backdoor takes, per arm (from ``dynamics.jsonl``)."""
    arms = [a for a in run.arms if a.dynamics]
    if not arms:
        return None
    header = ["arm", "epochs", "BLEU plateau epoch", "first epoch ASR >= 20%", "max ASR (epoch)",
              "payload-token CE first -> last", "DeCE pull on it first -> last", "val loss min (epoch)",
              "DeCE-auto trigger"]
    rows = []
    for a in arms:
        d = a.dynamics
        bleus = [r["bleu"] for r in d if r.get("bleu") is not None]
        top = max(bleus) if bleus else None
        plateau = _first_epoch(d, lambda r: top is not None and r.get("bleu") is not None and r["bleu"] >= 0.95 * top) if top else "-"
        asrs = [(r["asr"], r["epoch"]) for r in d if r.get("asr") is not None]
        first_asr = _first_epoch(d, lambda r: (r.get("asr") or 0) >= 20) if asrs else "-"
        max_asr = max(asrs) if asrs else None
        pay = [r["loss_payload"] for r in d if r.get("loss_payload") is not None]
        pull = [r["pull_payload"] for r in d if r.get("pull_payload") is not None]
        vals = [(r["val_loss"], r["epoch"]) for r in d if r.get("val_loss") is not None]
        vmin = min(vals) if vals else None
        trig = a.triggered_at if a.triggered_at is not None else ("not fired" if LOSSES.get(a.loss).adaptive else "-")
        rows.append([a.name, str(len(d)), plateau, first_asr,
                     f"{max_asr[0]:.1f}% ({max_asr[1]})" if max_asr else "-",
                     f"{pay[0]:.2f} -> {pay[-1]:.2f}" if pay else "-",
                     f"{100 * pull[0]:.2g}% -> {100 * pull[-1]:.2g}%" if pull else "-",
                     f"{vmin[0]:.3f} ({vmin[1]})" if vmin else "-", str(trig)])
    note = ("Per-epoch measurements on the small fixed eval subsets of [dynamics]. BLEU plateau epoch: the first "
            "epoch within 95% of the arm's best per-epoch BLEU. DeCE pull: how hard DeCE pulls the first payload "
            "token at the epoch's alpha, as a share of CE's pull (mean over the poisoned rows; under 50% DeCE damps it).")
    return Table(f"{run.name}: early learning", header, rows, note=note)
