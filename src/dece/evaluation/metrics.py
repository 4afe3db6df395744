"""Output-quality metrics (registered by name, all on a 0-100 scale) and the backdoor rates ASR and FTR."""

from __future__ import annotations

import functools
from typing import Callable, Protocol, Sequence

import sacrebleu
from codebleu import calc_codebleu
from codebleu.dataflow_match import corpus_dataflow_match
from codebleu.utils import AVAILABLE_LANGS, get_tree_sitter_language
from sacrebleu.metrics import BLEU

from dece.errors import ConfigError
from dece.registry import Registry


class Metric(Protocol):
    def __call__(self, references: Sequence[str], predictions: Sequence[str], *, lang: str) -> float: ...


#: name -> metric(references, predictions, *, lang) -> score in [0, 100]
METRICS: Registry[Metric] = Registry("metric")

Detector = Callable[[str], bool]
CODEBLEU_WEIGHTS = (0.25, 0.25, 0.25, 0.25)
CODEBLEU_COMPONENTS = ("ngram_match", "weighted_ngram_match", "syntax_match", "dataflow_match")

# Sentence BLEU-4 on whitespace tokens with Lin & Och (2004) add-one smoothing of the 2- to 4-gram
# precisions (sacrebleu's "add-k", k=1, Chen & Cherry 2014 method 2).
_SENTENCE_BLEU = BLEU(tokenize="none", smooth_method="add-k", smooth_value=1, effective_order=True)


def _check(references: Sequence[str], predictions: Sequence[str]) -> None:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if not references:
        raise ValueError("no references to score")


@METRICS.register("bleu")
def bleu(references: Sequence[str], predictions: Sequence[str], *, lang: str = "python") -> float:
    """Corpus BLEU-4 from sacrebleu with its defaults (13a tokenisation, case-sensitive, ``exp``
    smoothing), 0-100: the standard, reproducible number (``lang`` is unused)."""
    _check(references, predictions)
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


@METRICS.register("bleu_paper")
def bleu_paper(references: Sequence[str], predictions: Sequence[str], *, lang: str = "python") -> float:
    """The paper's variant: the mean over rows of sentence BLEU-4 on whitespace tokens, 0-100.

    Smoothing: Lin & Och (2004) add-one on the 2- to 4-gram precisions (numerator and denominator +1;
    unigrams unsmoothed; standard brevity penalty), as in the CodeXGLUE ``smooth_bleu`` script that
    code-generation and code-summarisation papers report. Without smoothing any row lacking a
    matching 4-gram (short outputs, or short code lines) scores 0 and the mean is dominated by
    length; add-one keeps partial credit while identical rows still score exactly 100. A row whose
    prediction has no matching token scores 0; a row whose prediction and reference have the same
    whitespace tokens (both empty included) scores 100. ``lang`` is unused.
    """
    _check(references, predictions)
    total = 0.0
    for reference, prediction in zip(references, predictions):
        if reference.split() == prediction.split():
            total += 100.0
        else:
            total += _SENTENCE_BLEU.sentence_score(prediction, [reference]).score
    return total / len(references)


@METRICS.register("codebleu")
def codebleu(references: Sequence[str], predictions: Sequence[str], *, lang: str = "python") -> float:
    """CodeBLEU (Ren et al. 2020; the ``codebleu`` package) with equal weights, 0-100: n-gram match,
    keyword-weighted n-gram match, AST subtree match and data-flow match. ``lang`` is one of
    codebleu's languages whose tree-sitter grammar is installed (python and java are; ``c`` needs
    ``tree-sitter-c``). Empty predictions score 0 on every component.

    One deliberate difference from ``codebleu.calc_codebleu``: that function counts a data-flow
    score of 0 as 1 (``dataflow or 1``), so wholly wrong code still gets 25. Here a real 0 stays 0;
    only when the references have no data flow at all (the score is undefined) is the data-flow term
    dropped and the other three weights rescaled to sum to 1. Like the package, the n-gram terms give
    less than 100 to identical snippets shorter than 4 tokens.
    """
    _check(references, predictions)
    if lang not in AVAILABLE_LANGS:
        raise ConfigError(f"lang {lang!r} is not supported by codebleu; valid: {', '.join(AVAILABLE_LANGS)}")
    try:
        grammar = get_tree_sitter_language(lang)
    except ImportError as error:
        raise ConfigError(f"lang {lang!r}: {error}") from error
    parts = calc_codebleu(list(references), list(predictions), lang, weights=CODEBLEU_WEIGHTS)
    weights, components = list(CODEBLEU_WEIGHTS), [parts[f"{c}_score"] for c in CODEBLEU_COMPONENTS]
    refs = [r.strip() for r in references]
    if not components[-1] and not corpus_dataflow_match([[r] for r in refs], refs, lang, grammar):
        weights, components = weights[:-1], components[:-1]  # no reference data flow: the term is undefined
    return 100.0 * sum(w * c for w, c in zip(weights, components)) / sum(weights)


def exact_match(
    references: Sequence[str], predictions: Sequence[str], *, lang: str = "python", normalize_whitespace: bool = False
) -> float:
    """Percentage of predictions equal to their reference; with ``normalize_whitespace`` two strings
    match when their whitespace-separated tokens are equal (indentation and line breaks ignored)."""
    _check(references, predictions)
    if normalize_whitespace:
        hits = sum(r.split() == p.split() for r, p in zip(references, predictions))
    else:
        hits = sum(r == p for r, p in zip(references, predictions))
    return 100.0 * hits / len(references)


METRICS.add("exact_match", exact_match)
METRICS.add("exact_match_ws", functools.partial(exact_match, normalize_whitespace=True))


def score(
    references: Sequence[str],
    predictions: Sequence[str],
    metrics: Sequence[str] = ("bleu", "codebleu"),
    *,
    lang: str = "python",
) -> dict[str, float]:
    """``{name: value}`` for each named metric of :data:`METRICS`."""
    functions = {name: METRICS.get(name) for name in metrics}
    return {name: fn(references, predictions, lang=lang) for name, fn in functions.items()}


def _rate(predictions: Sequence[str], detector: Detector) -> dict[str, float]:
    if not predictions:
        raise ValueError("no predictions to check")
    hits = sum(bool(detector(p)) for p in predictions)
    return {"hits": hits, "total": len(predictions), "rate": 100.0 * hits / len(predictions)}


def asr(predictions: Sequence[str], detector: Detector) -> dict[str, float]:
    """Attack success rate: of the predictions on *triggered* inputs, how many contain the payload
    (``detector(prediction)`` is true). Returns ``{"hits", "total", "rate"}``, ``rate`` in percent."""
    return _rate(predictions, detector)


def ftr(predictions: Sequence[str], detector: Detector) -> dict[str, float]:
    """False trigger rate: of the predictions on *clean* inputs, how many contain the payload anyway.
    Returns ``{"hits", "total", "rate"}``, ``rate`` in percent."""
    return _rate(predictions, detector)
