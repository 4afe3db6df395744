"""``dece audit``: rank training rows by how suspicious their learning dynamics are.

Input: an arm trained with ``[dynamics] row_losses = true``, whose ``dynamics.jsonl`` holds, at every
epoch, the cross-entropy of every training row under the model of that epoch (``row_losses``: the
row's mean token CE; ``row_max_losses``: its largest token CE). A backdoor's payload is a few tokens
that the clean majority does not teach, so early learning fits them last: under CE a poisoned row's
loss keeps falling after the clean rows have levelled off; under DeCE it stays high.

Scores (higher = more suspicious). Let :math:`l_{t,i}` be row :math:`i`'s loss after epoch
:math:`t = 1..E` and :math:`r_{t,i} \\in [0, 1]` its percentile rank among all rows at that epoch
(1 = the highest loss of that epoch). Ranks, not raw losses, so every epoch weighs the same although
the losses shrink as training goes.

* ``drop``: :math:`r_{1,i} - r_{E,i}`: the row was still hard after the first epoch, when
  early learning has fitted the clean majority, and was fitted later: *learned late*. The signal of
  an arm trained with CE (or any loss that lets the payload be learnt), from the epochs in which the
  payload is being learned.
* ``collapse``: :math:`\\max_t (r_{t-1,i} - r_{t,i})\\, r_{t-1,i}`: the largest one-epoch fall of a row
  that was among the hardest: *loss that stays high, then collapses*.
* ``rank``: :math:`\\frac{1}{E}\\sum_t r_{t,i}`: *never learned*: the signal of an arm trained with
  DeCE, whose bounded loss leaves the payload unfitted.
* ``auto`` (default): ``rank`` for an arm trained with fixed-schedule DeCE (loss ``dece``), ``drop``
  for every other arm (read from the run's ``config.toml``).
* ``pattern``: not from the dynamics but from the arm's saved (final) model: its CE on every target token of
  every training row, scored by how many more rows than chance share two places it fails on
  (:func:`dece.defenses.row_scores.pattern_scores`): the payload a DeCE arm never learnt, on long targets
  where the row-level scores are at chance. For arms trained with DeCE (under CE the final
  model has learnt the payload); needs no ``row_losses``, costs one forward pass over the training rows.
* ``onset``: the same token losses, scored by the heaviest single place the model fails on in (nearly) every
  row that holds it, named by the tokens from it on (:func:`dece.defenses.row_scores.onset_scores`): a payload
  inserted after the row's own text (Lyra), read from a DeCE arm that learnt the clean task.

The scores' math lives in :mod:`dece.defenses.row_scores` (pure functions, shared with the
``dece_filter`` defense); this module reads run folders, writes the CSVs and builds the tables.

The per-row loss statistic is the row's mean token CE (``mean``, the default for ``drop`` and
``collapse``) or its largest token CE (``max``, the default for ``rank``: a payload is a few tokens in
a long target, and a mean dilutes a loss that stays high). With the known poisoned rows
(``meta.poisoned``, as written by the runner; a user's own data has none), precision and recall at k
and the average precision are reported; the flagged rows (the top k) are written to a CSV.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dece.defenses.row_scores import (SCORES, TOKEN_SCORES, average_precision, precision_recall_at_k, ranking,
                                      suspicion_scores)
from dece.errors import ConfigError
from dece.experiments.store import read_records
from dece.losses import LOSSES

AUTO = "auto"
PATTERN = "pattern"
DEFAULT_STAT = {"drop": "mean", "collapse": "mean", "rank": "max"}
STATISTICS = ("max", "mean")
STAT_KEYS = {"max": "row_max_losses", "mean": "row_losses"}


@dataclass
class AuditResult:
    arm: str
    score: str
    statistic: str
    epochs: list[int]
    rows: list[dict[str, Any]]  # index, id, poisoned (None when unknown), src, tgt
    scores: list[float]
    order: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.order = ranking(self.scores)

    @property
    def positives(self) -> set[int] | None:
        if any(r.get("poisoned") is None for r in self.rows):
            return None
        return {r["index"] for r in self.rows if r["poisoned"]}

    def default_k(self) -> int:
        """The number of poisoned rows when known, else 5% of the rows."""
        pos = self.positives
        return len(pos) if pos else max(1, round(0.05 * len(self.rows)))

    def metrics(self, ks: Sequence[int] | None = None) -> dict[str, Any]:
        """``n_rows``, ``n_poisoned``, ``ap`` and ``{"k", "precision", "recall"}`` per k (labels known); a k above
        the number of rows is that number (every row flagged)."""
        pos = self.positives
        out: dict[str, Any] = {"arm": self.arm, "score": self.score, "statistic": self.statistic,
                               "epochs": len(self.epochs) if self.epochs else "final model", "n_rows": len(self.rows)}
        if pos is None:
            return out
        out["n_poisoned"] = len(pos)
        if not pos:  # a clean arm: nothing to find
            return out
        if ks is None:
            m = len(pos)
            ks = sorted({max(1, m // 2), max(1, m), max(1, 2 * m)})
        ks = sorted({min(k, len(self.rows)) for k in ks})
        out["ap"] = average_precision(self.order, pos)
        out["at_k"] = [dict(zip(("k", "precision", "recall"), (k, *precision_recall_at_k(self.order, pos, k)))) for k in ks]
        return out

    def write_csv(self, path: Path, k: int | None = None) -> Path:
        """The top ``k`` rows (default :meth:`default_k`), most suspicious first."""
        k = self.default_k() if k is None else k
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["rank", "row_index", "id", "score", "poisoned", "src", "tgt"])
            for rank, i in enumerate(self.order[:k], start=1):
                r = self.rows[i]
                w.writerow([rank, i, r.get("id"), f"{self.scores[i]:.6f}",
                            "" if r.get("poisoned") is None else int(bool(r["poisoned"])), r.get("src", ""), r.get("tgt", "")])
        tmp.replace(path)
        return path


def _arm_rows(run_dir: Path, arm_dir: Path) -> list[dict[str, Any]]:
    """The arm's training rows, as :func:`_training_rows` gives them, without knowing their number: the
    listed rows (``train_rows.jsonl``) or else the data file the arm trained on."""
    listed = arm_dir / "train_rows.jsonl"
    if listed.exists():
        return _training_rows(run_dir, arm_dir, len(read_records(listed)))
    import tomllib

    cfg = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    arm = next((a for a in cfg.get("arms", []) if isinstance(a, dict) and a.get("name") == arm_dir.name), {})
    return _training_rows(run_dir, arm_dir, len(read_records(run_dir / "data" / f"train.{arm.get('data', 'poisoned')}.jsonl")))


def _training_rows(run_dir: Path, arm_dir: Path, n: int) -> list[dict[str, Any]]:
    """The arm's training rows in training order: ``train_rows.jsonl`` joined with the data files."""
    listed = read_records(arm_dir / "train_rows.jsonl")
    by_id: dict[Any, dict[str, Any]] = {}
    for name in ("train.poisoned.jsonl", "train.clean.jsonl"):
        for r in read_records(run_dir / "data" / name):
            by_id.setdefault(r["meta"].get("id"), r)
    if len(listed) == n:
        rows = []
        for r in listed:
            full = by_id.get(r.get("id"), {})
            rows.append({"index": r["index"], "id": r.get("id"), "poisoned": bool(r.get("poisoned")),
                         "src": full.get("src", ""), "tgt": full.get("tgt", "")})
        return rows
    # older runs: no train_rows.jsonl; the arm trained on a whole data file
    import tomllib

    cfg = tomllib.loads((arm_dir / "config.toml").read_text(encoding="utf-8")) if (arm_dir / "config.toml").exists() else {}
    arms = cfg.get("arms") or [{}]
    data = arms[0].get("data", "poisoned") if isinstance(arms[0], dict) else "poisoned"
    file_rows = read_records(run_dir / "data" / f"train.{data}.jsonl")
    if len(file_rows) != n:
        return [{"index": i, "id": None, "poisoned": None, "src": "", "tgt": ""} for i in range(n)]
    return [{"index": i, "id": r["meta"].get("id"), "poisoned": bool(r["meta"].get("poisoned")),
             "src": r["src"], "tgt": r["tgt"]} for i, r in enumerate(file_rows)]


def auditable_arms(run_dir: Path) -> list[str]:
    """Arms of ``run_dir`` whose dynamics hold per-row losses."""
    from dece.experiments.dynamics import load_dynamics

    out = []
    for arm_dir in sorted((Path(run_dir) / "arms").glob("*")):
        recs = load_dynamics(arm_dir / "dynamics.jsonl")
        if recs and "row_losses" in recs[0]:
            out.append(arm_dir.name)
    return out


def dece_model_arms(run_dir: Path) -> list[str]:
    """Arms of ``run_dir`` trained with a DeCE loss (``deceptive``) whose model was kept: what ``pattern`` and
    ``onset`` read."""
    import tomllib

    from dece.reporting.collect import arm_specs

    config = tomllib.loads((Path(run_dir) / "config.toml").read_text(encoding="utf-8"))
    return [name for name, loss, _, _ in arm_specs(config)
            if LOSSES.get(loss).deceptive and (Path(run_dir) / "arms" / name / "model").is_dir()]


def audit_tokens(run_dir: Path, arm: str, *, score: str = PATTERN, ngram: int = 2, hard_loss: float = 3.0,
                 trigger: bool = False) -> tuple[AuditResult, list[Any]]:
    """The ``pattern`` or ``onset`` score (:data:`dece.defenses.row_scores.TOKEN_SCORES`) of every training row of
    ``run_dir/arms/ARM`` from the arm's saved model, and the heaviest places it found
    (:class:`~dece.defenses.row_scores.Pattern` / :class:`~dece.defenses.row_scores.Onset`); ``trigger``: the
    ``onset`` score also names each place's trigger word and flags the rows holding it
    (:func:`~dece.defenses.row_scores.onset_scores` with the inputs).

    Raises:
        ConfigError: an unknown score, no such arm, no saved model in it, a LoRA arm of a pretrained tiny base,
            bad ``ngram`` / ``hard_loss``, or ``trigger`` with a score other than ``onset``.
    """
    from dece.data.records import Example
    from dece.defenses.row_scores import check_pattern_options, input_words
    from dece.experiments import load_config
    from dece.experiments.token_losses import model_token_losses

    if score not in TOKEN_SCORES:
        raise ConfigError(f"unknown token score {score!r}; valid names: {', '.join(TOKEN_SCORES)}")
    run_dir = Path(run_dir)
    arm_dir = _arm_dir(run_dir, arm)
    check_pattern_options(ngram, hard_loss)  # before the model loads
    if trigger and score != "onset":
        raise ConfigError(f"trigger belongs to the onset score, not {score!r}")
    cfg = load_config(run_dir / "config.toml")
    if (arm_dir / "model" / "adapter_config.json").exists() and cfg.pretrain is not None:
        raise ConfigError(f"{arm_dir / 'model'}: LoRA adapters on a pretrained tiny base; the {score} audit reads full "
                          "models or adapters on an hf: checkpoint")
    rows = _arm_rows(run_dir, arm_dir)
    examples = [Example(src=r["src"], tgt=r["tgt"]) for r in rows]
    losses, tokens = model_token_losses(cfg.model, arm_dir / "model", examples, batch_size=cfg.eval.batch_size)
    inputs = {"sources": [input_words(e.src) for e in examples]} if trigger else {}
    scores, places = TOKEN_SCORES[score](losses, tokens, ngram=ngram, hard_loss=hard_loss, **inputs)
    how = "token pairs" if score == PATTERN else "single places" + (" and their triggers" if trigger else "")
    return AuditResult(arm, score, f"{how}, {ngram}-grams, CE >= {hard_loss:g}", [], rows, scores), places


def _arm_dir(run_dir: Path, arm: str) -> Path:
    arm_dir = run_dir / "arms" / arm
    if not arm_dir.is_dir():
        found = ", ".join(p.name for p in sorted((run_dir / "arms").glob("*"))) or "none"
        raise ConfigError(f"no arm {arm!r} in {run_dir}; arms: {found}")
    return arm_dir


def auto_score(run_dir: Path, arm: str) -> str:
    """The score ``auto`` stands for on this arm (module docstring)."""
    import tomllib

    from dece.reporting.collect import arm_specs

    path = Path(run_dir) / "config.toml"
    config = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    loss = next((loss for name, loss, _, _ in arm_specs(config) if name == arm), "ce")
    cls = LOSSES.get(loss)
    return "rank" if cls.deceptive and not cls.adaptive else "drop"


def audit_arm(run_dir: Path, arm: str, *, score: str = AUTO, statistic: str | None = None,
              epochs: int | None = None) -> AuditResult:
    """Scores every training row of ``run_dir/arms/ARM`` (``epochs``: use only the first ones;
    ``statistic``: default :data:`DEFAULT_STAT` of the score)."""
    from dece.experiments.dynamics import load_dynamics

    if score not in (*SCORES, AUTO):
        raise ConfigError(f"unknown score {score!r}; valid names: {', '.join((*SCORES, AUTO))}")
    if statistic is not None and statistic not in STATISTICS:
        raise ConfigError(f"unknown statistic {statistic!r}; valid names: {', '.join(STATISTICS)}")
    run_dir = Path(run_dir)
    arm_dir = _arm_dir(run_dir, arm)
    if score == AUTO:
        score = auto_score(run_dir, arm)
    statistic = statistic or DEFAULT_STAT[score]
    key = STAT_KEYS[statistic]
    recs = [r for r in load_dynamics(arm_dir / "dynamics.jsonl") if key in r]
    if epochs is not None:
        recs = recs[:epochs]
    if not recs:
        raise ConfigError(f"{arm_dir / 'dynamics.jsonl'} has no {key!r}: train the arm with [dynamics] row_losses = true")
    losses = [r[key] for r in recs]
    rows = _training_rows(run_dir, arm_dir, len(losses[0]))
    return AuditResult(arm, score, statistic, [r["epoch"] for r in recs], rows, suspicion_scores(losses, score))


def summary_table(results: Sequence[dict[str, Any]], title: str = "", note: str = ""):
    """A :class:`~dece.reporting.tables.Table` of :meth:`AuditResult.metrics` dicts (P/R in %)."""
    from dece.reporting.tables import Table

    ks = sorted({a["k"] for m in results for a in m.get("at_k", [])})
    header = ["arm", "score", "stat", "epochs", "rows", "poisoned", "AP"] + [f"P@{k} %" for k in ks] + [f"R@{k} %" for k in ks]
    rows = []
    for m in results:
        at = {a["k"]: a for a in m.get("at_k", [])}
        cells = [m["arm"], m["score"], m["statistic"], str(m["epochs"]), str(m["n_rows"]), str(m.get("n_poisoned", "-")),
                 f"{m['ap']:.3f}" if "ap" in m else "-"]
        cells += [f"{100 * at[k]['precision']:.1f}" if k in at else "-" for k in ks]
        cells += [f"{100 * at[k]['recall']:.1f}" if k in at else "-" for k in ks]
        rows.append(cells)
    return Table(title, header, rows, note=note)


def metrics_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table of :meth:`AuditResult.metrics` dicts (P/R as percentages)."""
    return summary_table(results).to_markdown()
