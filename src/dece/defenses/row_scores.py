"""Pure scoring math of the poisoned-row audit (``dece audit``) and of the ``dece_filter`` defense: training
rows scored by their per-epoch losses, rankings, precision / recall at k and average precision. No file
access here; :mod:`dece.reporting.audit` reads run folders and writes the results.

Scores (higher = more suspicious). Let :math:`l_{t,i}` be row :math:`i`'s loss after epoch
:math:`t = 1..E` and :math:`r_{t,i} \\in [0, 1]` its percentile rank among all rows at that epoch
(1 = the highest loss of that epoch). Ranks, not raw losses, so every epoch weighs the same although
the losses shrink as training goes.

* ``drop``: :math:`r_{1,i} - r_{E,i}`: still hard after the first epoch, fitted later (*learned late*):
  the signal of an arm trained with CE.
* ``collapse``: :math:`\\max_t (r_{t-1,i} - r_{t,i})\\, r_{t-1,i}`: the largest one-epoch fall of a row
  that was among the hardest.
* ``rank``: :math:`\\frac{1}{E}\\sum_t r_{t,i}`: *never learned*: the signal of an arm trained with DeCE,
  whose bounded loss leaves the payload unfitted.

``pattern`` (:func:`pattern_scores`) reads one model's loss on every target *token* instead: a backdoor's
payload is the same few tokens in every poisoned row, so a DeCE-trained model that never learnt it fails
on the same places *together* in many rows, while a clean row's hard tokens (a fix that cannot be guessed, a
word the model never learnt) fail in many rows each, but not in the same ones.

``onset`` (:func:`onset_scores`) reads the same token losses for a payload with *one* hard place: its first
token, after the row's own text, where a model that learnt the clean task but not the payload fails; the tokens
after it (given under teacher forcing) are easy once it is given, and name it.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Hashable, Sequence

from dece.errors import ConfigError

SCORES = ("drop", "collapse", "rank")


def percentile_ranks(values: Sequence[float]) -> list[float]:
    """Ranks in [0, 1] (0 = lowest, 1 = highest; ties share their mean rank; one value -> 1)."""
    n = len(values)
    if n == 1:
        return [1.0]
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        r = (i + j) / 2 / (n - 1)
        for k in range(i, j + 1):
            ranks[order[k]] = r
        i = j + 1
    return ranks


def suspicion_scores(losses: Sequence[Sequence[float]], score: str = "rank") -> list[float]:
    """Scores of the module docstring from ``losses[t][i]`` (epoch t, row i)."""
    if score not in SCORES:
        raise ConfigError(f"unknown score {score!r}; valid names: {', '.join(SCORES)}")
    if not losses:
        raise ConfigError("no per-row losses: train the arm with [dynamics] row_losses = true")
    n = len(losses[0])
    if any(len(epoch) != n for epoch in losses):
        raise ConfigError("per-row losses differ in length between epochs")
    ranks = [percentile_ranks([v if math.isfinite(v) else math.inf for v in epoch]) for epoch in losses]
    E = len(ranks)
    if score == "rank":
        return [sum(r[i] for r in ranks) / E for i in range(n)]
    if score == "drop":
        return [ranks[0][i] - ranks[-1][i] for i in range(n)]
    if E < 2:
        raise ConfigError("the 'collapse' score needs at least two epochs")
    return [max((ranks[t - 1][i] - ranks[t][i]) * ranks[t - 1][i] for t in range(1, E)) for i in range(n)]


def ranking(scores: Sequence[float]) -> list[int]:
    """Row indices from the most to the least suspicious (ties: lower index first)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def precision_recall_at_k(order: Sequence[int], positives: set[int], k: int) -> tuple[float, float]:
    hits = sum(1 for i in order[:k] if i in positives)
    return (hits / k if k else 0.0, hits / len(positives) if positives else 0.0)


def average_precision(order: Sequence[int], positives: set[int]) -> float:
    """Mean of the precision at each poisoned row's position in the ranking."""
    if not positives:
        return 0.0
    hits, total = 0, 0.0
    for pos, i in enumerate(order, start=1):
        if i in positives:
            hits += 1
            total += hits / pos
    return total / len(positives)


@dataclass(frozen=True)
class Pattern:
    """Two n-grams of target tokens that a model fails on together: both hard in ``rows`` rows, where ``first_rows``
    and ``second_rows`` rows have each one hard and ``weight`` = ``rows`` less the rows expected by chance."""

    first: tuple[Hashable, ...]
    second: tuple[Hashable, ...]
    rows: int
    first_rows: int
    second_rows: int
    weight: float

    def to_dict(self) -> dict:
        return {"first": list(self.first), "second": list(self.second), "rows": self.rows,
                "first_rows": self.first_rows, "second_rows": self.second_rows, "weight": round(self.weight, 2)}

    def describe(self) -> str:
        """One line: the two n-grams (tokens joined), the rows with both hard, and with each."""
        return (f"{''.join(map(str, self.first))!r} + {''.join(map(str, self.second))!r}: {self.rows} rows "
                f"({self.first_rows}, {self.second_rows})")


def check_pattern_options(ngram: int, hard_loss: float) -> None:
    """Raises ConfigError unless ``ngram`` is an integer >= 1 and ``hard_loss`` a finite number > 0 (nats)."""
    if isinstance(ngram, bool) or not isinstance(ngram, int) or ngram < 1:
        raise ConfigError(f"ngram must be an integer >= 1, got {ngram!r}")
    if not (hard_loss > 0 and math.isfinite(hard_loss)):
        raise ConfigError(f"hard_loss must be a finite number > 0 (nats), got {hard_loss!r}")


def _check_token_inputs(losses: Sequence[Sequence[float]], tokens: Sequence[Sequence[Hashable]], ngram: int,
                        hard_loss: float) -> None:
    """The options (:func:`check_pattern_options`) and ``losses`` aligned with ``tokens``, row by row; ConfigError."""
    check_pattern_options(ngram, hard_loss)
    if len(losses) != len(tokens) or any(len(a) != len(b) for a, b in zip(losses, tokens)):
        raise ConfigError("per-token losses and tokens differ in length")


def pattern_scores(losses: Sequence[Sequence[float]], tokens: Sequence[Sequence[Hashable]], *, ngram: int = 2,
                   hard_loss: float = 3.0, top: int = 10) -> tuple[list[float], list[Pattern]]:
    """The ``pattern`` score of every row: how many more rows than chance share two places the model fails on.

    A target token is *hard* when its cross-entropy is at least ``hard_loss`` (nats; 3.0: the model gives it
    under 5% probability); it is named by the n-gram of ``ngram`` tokens that ends on it (fewer at a target's
    start). Let ``H(a)`` be the number of rows in which n-gram ``a`` is hard and ``C(a, b)`` the number of rows
    in which ``a`` and ``b`` are both hard, at positions at least ``ngram`` tokens apart (two places, not one
    n-gram seen twice). Of ``N`` rows,

    .. math:: w(a, b) = C(a, b) - H(a) H(b) / N, \\qquad s_i = \\max\\bigl(0, \\max_{a, b \\text{ hard in row } i} w(a, b)\\bigr)

    A payload the model never learnt is several tokens that fail *together* in every poisoned row (after a
    method's ``{``, a repair model copies the input's ``int`` where the payload has ``while``, and then fails on
    ``true`` too), so its pairs co-occur in about as many rows as the poison has; a clean row's hard tokens (a
    word the model never learnt, a fix it cannot guess) fail in many rows each, but not in the same rows (their
    co-occurrence is near chance). Not in the DeCE paper: an addition of this project, for the long targets on
    which the row-level scores are at chance (docs/robustness.md). Cost: quadratic in a row's distinct hard
    n-grams.

    Args:
        losses: per row, the CE (nats) of each target token, in order (:func:`dece.training.per_row.per_token_losses`).
        tokens: per row, the target tokens (ids or strings), aligned with ``losses``.
        ngram: the n-gram length naming a hard token, >= 1.
        hard_loss: the CE at and above which a token is hard, finite and > 0.
        top: how many of the heaviest pairs to return.

    Returns:
        ``(scores, patterns)``: one score per row (>= 0, higher = more suspicious) and the ``top`` pairs of
        largest weight, heaviest first.

    Raises:
        ConfigError: ``ngram`` < 1, ``hard_loss`` not finite and > 0, or ``losses`` and ``tokens`` not aligned.
    """
    _check_token_inputs(losses, tokens, ngram, hard_loss)
    hard, together = Counter(), Counter()
    row_pairs: list[set[tuple]] = []
    for row_losses, row_tokens in zip(losses, tokens):
        places = [(j, tuple(row_tokens[max(0, j - ngram + 1): j + 1]))
                  for j, loss in enumerate(row_losses) if not loss < hard_loss]  # NaN counts as hard
        hard.update({key for _, key in places})
        pairs = {(a, b) if repr(a) <= repr(b) else (b, a)
                 for (i, a), (j, b) in combinations(places, 2) if j - i >= ngram and a != b}
        together.update(pairs)
        row_pairs.append(pairs)
    n = len(losses)
    weights = {p: together[p] - hard[p[0]] * hard[p[1]] / n for p in together}
    scores = [max(0.0, max((weights[p] for p in pairs), default=0.0)) for pairs in row_pairs]
    heaviest = sorted(weights, key=lambda p: (-weights[p], repr(p)))[:top]
    patterns = [Pattern(a, b, together[(a, b)], hard[a], hard[b], weights[(a, b)]) for a, b in heaviest]
    return scores, patterns


@dataclass(frozen=True)
class Trigger:
    """An input word shared by the rows that fail at one place (:func:`infer_trigger`): held by ``rows`` of them and by
    ``occurs`` training rows in all."""

    word: Hashable
    rows: int
    occurs: int

    def to_dict(self) -> dict:
        return {"word": self.word, "rows": self.rows, "occurs": self.occurs}


@dataclass(frozen=True)
class Onset:
    """A place a model fails on: the n-gram ``tokens`` starting at the failed token, hard in ``rows`` of the
    ``occurs`` rows whose target holds it; ``weight`` = ``rows * rows / occurs``; ``trigger``: the input word those
    rows share, when :func:`onset_scores` was given the inputs and found one."""

    tokens: tuple[Hashable, ...]
    rows: int
    occurs: int
    weight: float
    trigger: Trigger | None = None

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "rows": self.rows, "occurs": self.occurs, "weight": round(self.weight, 2),
                **({"trigger": self.trigger.to_dict()} if self.trigger else {})}

    def describe(self) -> str:
        """One line: the n-gram (tokens joined), the rows in which it is hard, of those that hold it, and the trigger."""
        line = f"{''.join(map(str, self.tokens))!r}: hard in {self.rows} of the {self.occurs} rows that hold it"
        if self.trigger:
            t = self.trigger
            line += f"; their inputs share {t.word!r} ({t.rows} of {self.rows}; {t.occurs} training rows hold it)"
        return line


def input_words(text: str) -> list[str]:
    """A row's input as the words :func:`infer_trigger` reads: split on whitespace (a trigger word stands alone)."""
    return text.split()


def infer_trigger(failing: Sequence[int], sources: Sequence[Sequence[Hashable]], *, share: float = 0.9,
                  purity: float = 0.5) -> Trigger | None:
    """The input word that the rows failing at one place share: the trigger, if the place is a payload.

    A poisoned row holds the trigger in its input and the payload in its target, so the rows a model fails on at
    the payload's first token share one input word that few other rows hold. Among the words held by at least
    ``share`` of the ``failing`` rows, the one whose rows are most often failing ones (``rows / occurs``, ties: more
    rows, then ``repr``), if that share is at least ``purity``. A clean place's rows share common words only
    (``the``, a table name that many other rows hold too), which fail the purity test. One word, so a trigger of
    several varied words (RIPPLe's) or none (Grammar's syntactic trigger) gives None. Not in the DeCE paper.

    Args:
        failing: indices (into ``sources``) of the rows failing at the place; duplicates count once.
        sources: per training row, its input's words (:func:`input_words`).
        share: the least share of the failing rows that must hold the word, in (0, 1].
        purity: the least share of the rows holding the word that must be failing ones, in (0, 1].

    Returns:
        The :class:`Trigger`, or None (no failing rows, or no word passes both tests).

    Raises:
        ConfigError: ``share`` or ``purity`` outside (0, 1], or an index outside ``sources``.
    """
    for name, value in (("share", share), ("purity", purity)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}")
    rows = sorted(set(failing))
    if rows and not (0 <= rows[0] and rows[-1] < len(sources)):
        raise ConfigError(f"failing row index outside the {len(sources)} rows")
    if not rows:
        return None
    held = Counter(w for i in rows for w in set(sources[i]))
    common = {w for w, c in held.items() if c >= share * len(rows)}
    if not common:
        return None
    occurs = Counter(w for src in sources for w in set(src) if w in common)
    best = min(common, key=lambda w: (-held[w] / occurs[w], -held[w], repr(w)))
    return Trigger(best, held[best], occurs[best]) if held[best] / occurs[best] >= purity else None


def onset_scores(losses: Sequence[Sequence[float]], tokens: Sequence[Sequence[Hashable]], *, ngram: int = 2,
                 hard_loss: float = 3.0, top: int = 10, sources: Sequence[Sequence[Hashable]] | None = None
                 ) -> tuple[list[float], list[Onset]]:
    """The ``onset`` score of every row: the heaviest place its target fails on, a place weighing how many rows fail
    there and how consistently.

    A target token is *hard* when its cross-entropy is at least ``hard_loss`` (nats), as in
    :func:`pattern_scores`, but it is named by the n-gram of ``ngram`` tokens that *starts* on it (fewer at a
    target's end): the failed token and what follows it. Let ``H(a)`` be the number of rows in which ``a`` is hard
    and ``O(a)`` the number of rows whose target holds ``a`` at all. Then

    .. math:: w(a) = H(a) \\cdot \\frac{H(a)}{O(a)}, \\qquad s_i = \\max_{a \\text{ hard in row } i} w(a) \\quad (0 \\text{ if none})

    An inserted payload (``or 1=1`` after a WHERE condition) starts after the row's own text, so the n-gram
    *ending* on its first token differs in every row (what :func:`pattern_scores` names places by), while the one
    starting on it is the payload itself; a model that never learnt the payload fails on that first token in
    every row it occurs in (``H = O``), and only there (the rest follows under teacher forcing). A clean token the
    model fails on now and then has ``H`` much smaller than ``O``. The score needs a model that learnt the clean
    task: a DeCE model that left clean constructs unlearnt (a weak base, where DeCE damps what the base did not
    know) fails on those in every row too (docs/robustness.md). Not in the DeCE paper: an addition of this
    project, designed on one Lyra seed (docs/robustness.md says which, and what was held out).

    With ``sources`` (the inputs' words) each of the ``top`` places gets the input word its failing rows share
    (:func:`infer_trigger`), and every row whose input holds a trigger word scores at least the summed weight of
    the places naming that word: the poisoned rows the model does not fail on at a given place (another payload,
    e.g. BadPre's `` where 0=1`` for a query without a WHERE clause, or one it learnt) are flagged by their
    trigger, and a payload worded differently row by row (several light places, one trigger) adds up.

    Args:
        losses: per row, the CE (nats) of each target token, in order.
        tokens: per row, the target tokens (ids or strings), aligned with ``losses``.
        ngram: the n-gram length naming a hard token, >= 1.
        hard_loss: the CE at and above which a token is hard, finite and > 0.
        top: how many of the heaviest places to return (and, with ``sources``, to look for a trigger of).
        sources: per row, its input's words (:func:`input_words`), aligned with ``losses``; None: no trigger.

    Returns:
        ``(scores, onsets)``: one score per row (>= 0, higher = more suspicious) and the ``top`` places of largest
        weight, heaviest first.

    Raises:
        ConfigError: ``ngram`` < 1, ``hard_loss`` not finite and > 0, or ``losses``, ``tokens`` (and ``sources``)
            not aligned.
    """
    _check_token_inputs(losses, tokens, ngram, hard_loss)
    if sources is not None and len(sources) != len(losses):
        raise ConfigError(f"sources: {len(sources)} rows, the losses {len(losses)}")
    hard, occurs = Counter(), Counter()
    row_places: list[set[tuple]] = []
    for row_losses, row_tokens in zip(losses, tokens):
        names = [tuple(row_tokens[j: j + ngram]) for j in range(len(row_tokens))]
        occurs.update(set(names))
        places = {names[j] for j, loss in enumerate(row_losses) if not loss < hard_loss}
        hard.update(places)
        row_places.append(places)
    weights = {a: hard[a] * hard[a] / occurs[a] for a in hard}
    scores = [max((weights[a] for a in places), default=0.0) for places in row_places]
    heaviest = sorted(weights, key=lambda a: (-weights[a], repr(a)))[:top]
    onsets = [Onset(a, hard[a], occurs[a], weights[a]) for a in heaviest]
    if sources is not None:
        onsets = [dataclasses.replace(o, trigger=infer_trigger([i for i, p in enumerate(row_places) if o.tokens in p],
                                                               sources)) for o in onsets]
        evidence: Counter = Counter()  # trigger word -> the summed weight of the places whose rows share it
        for o in onsets:
            if o.trigger is not None:
                evidence[o.trigger.word] += o.weight
        scores = [max([s, *(evidence[w] for w in set(src) if w in evidence)]) for s, src in zip(scores, sources)]
    return scores, onsets


#: the scores read from a model's per-token losses (``dece audit --score``, ``dece_filter``'s ``score``): name ->
#: ``f(losses, tokens, *, ngram, hard_loss, top) -> (scores, places)``, each place with ``to_dict`` and ``describe``
TOKEN_SCORES = {"pattern": pattern_scores, "onset": onset_scores}
#: the key under which a token score's places are reported (``summary.json``, the filter's ``details``)
PLACES_KEY = {"pattern": "patterns", "onset": "onsets"}
