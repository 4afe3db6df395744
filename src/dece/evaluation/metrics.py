"""Output-quality metrics (registered by name, all on a 0-100 scale) and the backdoor rates ASR and FTR."""

from __future__ import annotations

import functools
import math
import re
import sys
import xml.sax.saxutils
from collections import Counter
from typing import Callable, Protocol, Sequence

import sacrebleu
from codebleu import calc_codebleu
from codebleu.bleu import corpus_bleu as _nltk_corpus_bleu
from codebleu.dataflow_match import corpus_dataflow_match
from codebleu.utils import AVAILABLE_LANGS, get_tree_sitter_language
from sacrebleu.metrics import BLEU
from tree_sitter import Parser

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
    smoothing): the standard, reproducible number (Post, "A Call for Clarity in Reporting BLEU Scores", 2018).

    Args:
        references: one reference per row.
        predictions: one prediction per row, aligned with ``references``.
        lang: unused (the metrics share one signature).

    Returns:
        BLEU, 0-100.

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    _check(references, predictions)
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


@METRICS.register("bleu_paper")
def bleu_paper(references: Sequence[str], predictions: Sequence[str], *, lang: str = "python") -> float:
    """The mean over rows of sentence BLEU-4 on whitespace tokens, 0-100 (sacrebleu's sentence BLEU).

    Smoothing: Lin & Och (2004) add-one on the 2- to 4-gram precisions (unigrams unsmoothed), as in
    CodeXGLUE's ``smooth_bleu``; brevity penalty: the standard ``exp(1 - r/c)``. It reproduces
    neither published scorer exactly: ``smooth_bleu`` (:func:`bleu_codexglue`) lower-cases, splits
    punctuation and uses ``exp(1 - (r+1)/(c+1))``; the DeCE authors' scorer
    (:func:`bleu_dece_authors`) does not smooth the 2- to 4-grams. Kept under its historical name
    for results already recorded. A row whose prediction has no matching token scores 0; a row whose
    prediction and reference have the same whitespace tokens (both empty included) scores 100.
    ``lang`` is unused.
    """
    _check(references, predictions)
    total = 0.0
    for reference, prediction in zip(references, predictions):
        if reference.split() == prediction.split():
            total += 100.0
        else:
            total += _SENTENCE_BLEU.sentence_score(prediction, [reference]).score
    return total / len(references)


# CodeXGLUE's smooth_bleu (code-to-text evaluator, after NIST mteval-v11a): punctuation splitting,
# lower-casing, and the NIST normalisation applied again inside the scorer.
_SPLIT_PUNCTS = re.compile(r"[\w]+|[^\s\w]")
_NIST_JOIN = ((re.compile(r"<skipped>"), ""), (re.compile(r"-\n"), ""), (re.compile(r"\n"), " "))
_NIST_TOKENIZE = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def _codexglue_tokens(text: str) -> list[str]:
    s = " ".join(_SPLIT_PUNCTS.findall(text.strip().lower()))
    for pattern, replace in _NIST_JOIN:
        s = pattern.sub(replace, s)
    s = f" {xml.sax.saxutils.unescape(s, {'&quot;': chr(34)})} ".lower()
    for pattern, replace in _NIST_TOKENIZE:
        s = pattern.sub(replace, s)
    return s.split()


def _ngram_counts(words: list[str], n: int = 4) -> Counter:
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def _smooth_bleu_row(reference: list[str], prediction: list[str], n: int = 4) -> float:
    ref_counts, hyp_counts = _ngram_counts(reference, n), _ngram_counts(prediction, n)
    correct = [0] * n
    for ngram, count in hyp_counts.items():
        correct[len(ngram) - 1] += min(ref_counts.get(ngram, 0), count)
    tiny = sys.float_info.min
    log_bleu = 0.0
    for k in range(n):
        guess, add = max(len(prediction) - k, 0), (1 if k > 0 else 0)
        log_bleu += math.log(correct[k] + add + tiny) - math.log(guess + add + tiny)
    brevity = min(0.0, 1.0 - (len(reference) + 1) / (len(prediction) + 1))
    return math.exp(log_bleu / n + brevity)


@METRICS.register("bleu_codexglue")
def bleu_codexglue(references: Sequence[str], predictions: Sequence[str], *, lang: str = "python") -> float:
    """CodeXGLUE's ``smooth_bleu`` (the code-to-text evaluator), 0-100: the mean over rows of
    sentence BLEU-4 with add-one smoothing of the 2- to 4-gram precisions and the brevity penalty
    ``exp(min(0, 1 - (r + 1) / (c + 1)))``, after lower-casing, splitting words from punctuation
    (``[\\w]+|[^\\s\\w]``) and NIST mteval-v11a normalisation. ``lang`` is unused.

    Raises:
        ValueError: lengths differ or there are no rows.
    """
    _check(references, predictions)
    rows = (_smooth_bleu_row(_codexglue_tokens(r), _codexglue_tokens(p)) for r, p in zip(references, predictions))
    return 100.0 * sum(rows) / len(references)


@METRICS.register("bleu_dece_authors")
def bleu_dece_authors(references: Sequence[str], predictions: Sequence[str], *, lang: str = "python") -> float:
    """The DeCE authors' released BLEU, 0-100: for each row, the NLTK-derived ``corpus_bleu`` of the
    ``codebleu`` package (BLEU-4, smoothing method 1: epsilon 0.1 for a zero n-gram count, standard
    brevity penalty) on whitespace tokens, then the mean over rows. A row without any matching token
    scores 0. This is the BLEU of the paper's tables. ``lang`` is unused.

    Raises:
        ValueError: lengths differ or there are no rows.
    """
    _check(references, predictions)
    total = sum(_nltk_corpus_bleu([[r.split()]], [p.split()]) for r, p in zip(references, predictions))
    return 100.0 * total / len(references)


#: The grammar packages CodeBLEU needs, per language, at versions ``codebleu`` 0.7 accepts (the
#: ``langs`` extra of this project installs them all; python and java come with the base install).
GRAMMAR_PACKAGES = {
    "python": "tree-sitter-python==0.21.0",
    "java": "tree-sitter-java==0.21.0",
    "c": "tree-sitter-c==0.21.4",
    "cpp": "tree-sitter-cpp==0.22.3",
    "c_sharp": "tree-sitter-c-sharp==0.21.3",
    "javascript": "tree-sitter-javascript==0.21.4",
    "go": "tree-sitter-go==0.21.2",
    "php": "tree-sitter-php==0.22.8",
    "ruby": "tree-sitter-ruby==0.21.0",
    "rust": "tree-sitter-rust==0.21.2",
}


def codebleu_grammar(lang: str):
    """The tree-sitter ``Language`` CodeBLEU parses ``lang`` with.

    Raises:
        ConfigError: ``lang`` is not one of codebleu's languages, or its grammar package is missing or
            of a version the installed ``tree-sitter`` cannot load; the message says what to install.
    """
    if lang not in AVAILABLE_LANGS:
        raise ConfigError(f"lang {lang!r} is not supported by codebleu; valid: {', '.join(AVAILABLE_LANGS)}")
    fix = (f"pip install '{GRAMMAR_PACKAGES[lang]}' (or `pip install -e '.[langs]'`), or drop the metric"
           if lang in GRAMMAR_PACKAGES else "drop the metric")
    try:
        grammar = get_tree_sitter_language(lang)
        Parser(grammar)
    except (ImportError, TypeError, ValueError) as error:
        raise ConfigError(f"the tree-sitter grammar for {lang!r} is not usable ({error}): {fix}") from None
    return grammar


#: metric name -> a check that it can score a language (raises ConfigError); metrics absent here
#: score any text
METRIC_CHECKS: dict[str, Callable[[str], object]] = {"codebleu": codebleu_grammar}


def check_metric(name: str, lang: str) -> None:
    """Raise before any work when metric ``name`` cannot score ``lang``.

    Raises:
        ConfigError: unknown metric (names the valid ones), or one that needs what ``lang`` lacks
            (e.g. CodeBLEU without the language's tree-sitter grammar; says what to install).
    """
    METRICS.get(name)
    check = METRIC_CHECKS.get(name)
    if check is not None:
        check(lang)


@METRICS.register("codebleu")
def codebleu(references: Sequence[str], predictions: Sequence[str], *, lang: str = "python") -> float:
    """CodeBLEU (Ren et al. 2020; the ``codebleu`` package) with equal weights, 0-100: n-gram match,
    keyword-weighted n-gram match, AST subtree match and data-flow match. ``lang`` is one of
    codebleu's languages whose tree-sitter grammar is installed (python and java always; the others
    with the ``langs`` extra, see :data:`GRAMMAR_PACKAGES`). Empty predictions score 0 on every component.

    One deliberate difference from ``codebleu.calc_codebleu``: that function counts a data-flow
    score of 0 as 1 (``dataflow or 1``), so wholly wrong code still gets 25. Here a real 0 stays 0;
    only when the references have no data flow at all (the score is undefined) is the data-flow term
    dropped and the other three weights rescaled to sum to 1. Like the package, the n-gram terms give
    less than 100 to identical snippets shorter than 4 tokens.
    """
    _check(references, predictions)
    grammar = codebleu_grammar(lang)
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
    """Attack success rate (ASR): of the predictions on *triggered* inputs, how many carry the payload.

    Args:
        predictions: the model's outputs on the triggered test inputs
            (:func:`dece.attacks.triggered_test_set`, which already leaves out rows that cannot measure it).
        detector: the attack's payload detector (``Attack.detect``).

    Returns:
        ``{"hits", "total", "rate"}``, ``rate`` in percent (0-100) of ``total``.
    """
    return _rate(predictions, detector)


def ftr(predictions: Sequence[str], detector: Detector, references: Sequence[str] | None = None) -> dict[str, float]:
    """False trigger rate: of the predictions on *clean* inputs, how many contain the payload anyway.

    Args:
        predictions: the model's outputs on the clean test inputs.
        detector: the attack's payload detector.
        references: the clean targets, aligned with ``predictions``. A row whose reference already
            satisfies the detector is left out of the denominator (a model that reproduces the
            reference would otherwise count as a false trigger) and counted in ``excluded``.

    Returns:
        ``{"hits", "total", "rate", "excluded"}``, ``rate`` in percent of ``total``; None when every
        row is excluded (no denominator).

    Raises:
        ValueError: no predictions, or ``references`` of another length.
    """
    if references is None:
        return {**_rate(predictions, detector), "excluded": 0}
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if not predictions:
        raise ValueError("no predictions to check")
    counted = [p for r, p in zip(references, predictions) if not detector(r)]
    if not counted:
        return None
    return {**_rate(counted, detector), "excluded": len(predictions) - len(counted)}
