"""Metrics on hand-checkable cases: identical -> 100, disjoint -> 0, partial cases worked out by hand
and cross-checked against sacrebleu / codebleu directly."""

import importlib.util
import math

import pytest
import sacrebleu
from codebleu import calc_codebleu

from dece.errors import ConfigError, UnknownNameError
from dece.evaluation import METRICS, asr, bleu, bleu_paper, codebleu, exact_match, ftr, score

REFS = [
    "def add(a, b):\n    total = a + b\n    return total\n",
    "def rows(cursor, name):\n"
    "    cursor.execute('SELECT * FROM users WHERE name = %s', (name,))\n"
    "    return cursor.fetchall()\n",
]
DISJOINT = ["import sys", "raise ValueError"]
QUALITY = ["bleu", "bleu_paper", "codebleu", "exact_match", "exact_match_ws"]


def test_registry_lists_the_metrics():
    assert set(QUALITY) <= set(METRICS.names())
    with pytest.raises(UnknownNameError, match="bleu_paper"):
        METRICS.get("blue")


def test_identical_scores_100():
    assert score(REFS, REFS, QUALITY) == pytest.approx({name: 100.0 for name in QUALITY})


def test_disjoint_scores_0():
    assert score(REFS, DISJOINT, QUALITY) == pytest.approx({name: 0.0 for name in QUALITY})


def test_empty_predictions_do_not_crash():
    assert score(REFS, ["", ""], QUALITY) == pytest.approx({name: 0.0 for name in QUALITY})


def test_bleu_is_sacrebleu_corpus_bleu():
    predictions = ["def add(a, b):\n    return a + b\n", REFS[1].replace("users", "people")]
    expected = sacrebleu.corpus_bleu(predictions, [REFS]).score
    assert 0 < expected < 100
    assert bleu(REFS, predictions) == pytest.approx(expected)


def test_bleu_paper_by_hand():
    # row 1: p1 = 4/5; add-one for n >= 2: p2 = (3+1)/(4+1), p3 = (2+1)/(3+1), p4 = (1+1)/(2+1); no brevity penalty
    row1 = 100 * (4 / 5 * 4 / 5 * 3 / 4 * 2 / 3) ** 0.25
    # row 2: all 3 tokens match, p2..p4 = 1 after add-one; brevity penalty exp(1 - 6/3)
    row2 = 100 * math.exp(1 - 6 / 3)
    assert bleu_paper(["a b c d e"], ["a b c d f"]) == pytest.approx(row1)
    assert bleu_paper(["a b c d e f"], ["a b c"]) == pytest.approx(row2)
    assert bleu_paper(["a b c d e", "a b c d e f"], ["a b c d f", "a b c"]) == pytest.approx((row1 + row2) / 2)


def test_bleu_paper_uses_whitespace_tokens():
    assert bleu_paper(["a b\n    c"], ["a  b c"]) == 100.0
    assert bleu_paper([""], ["  \n"]) == 100.0
    assert bleu_paper(["x = f(a)"], ["x = f( a )"]) < 100.0  # no punctuation splitting


def test_exact_match_strict_and_whitespace_normalised():
    refs, preds = ["a  b\n", "c", "d"], ["a b", "c", "e"]
    assert exact_match(refs, preds) == pytest.approx(100 / 3)
    assert exact_match(refs, preds, normalize_whitespace=True) == pytest.approx(200 / 3)
    assert METRICS.get("exact_match_ws")(refs, preds, lang="python") == pytest.approx(200 / 3)


def test_codebleu_partial_agrees_with_the_package():
    predictions = ["def add(a, b):\n    return a + b\n", REFS[1].replace("name", "user")]
    parts = calc_codebleu(REFS, predictions, "python")
    assert parts["dataflow_match_score"] > 0  # where the package's `dataflow or 1` does not apply
    assert 0 < parts["codebleu"] < 1
    assert codebleu(REFS, predictions) == pytest.approx(100 * parts["codebleu"])


def test_codebleu_keeps_a_real_zero_data_flow_score():
    assert 100 * calc_codebleu(REFS, DISJOINT, "python")["codebleu"] == pytest.approx(25.0)  # the package's quirk
    assert codebleu(REFS, DISJOINT) == 0.0


def test_codebleu_without_reference_data_flow_drops_that_term():
    refs = ["print('hello world', 42, sep=', ')"]
    assert calc_codebleu(refs, refs, "python")["dataflow_match_score"] == 0
    assert codebleu(refs, refs) == pytest.approx(100.0)
    assert codebleu(refs, ["import sys"]) == 0.0


def test_codebleu_java():
    refs = ["public int add(int a, int b) {\n    int c = a + b;\n    return c;\n}"]
    assert codebleu(refs, refs, lang="java") == pytest.approx(100.0)
    assert 0 < codebleu(refs, ["public int add(int a, int b) {\n    return a - b;\n}"], lang="java") < 100


def test_codebleu_language_errors_name_lang():
    with pytest.raises(ConfigError, match="lang 'cobol'"):
        codebleu(REFS, REFS, lang="cobol")
    if importlib.util.find_spec("tree_sitter_c") is None:
        with pytest.raises(ConfigError, match="tree-sitter-c"):
            codebleu(REFS, REFS, lang="c")


@pytest.mark.parametrize("name", QUALITY)
def test_mismatched_or_empty_inputs_are_rejected(name):
    metric = METRICS.get(name)
    with pytest.raises(ValueError, match="predictions"):
        metric(REFS, REFS[:1], lang="python")
    with pytest.raises(ValueError, match="no references"):
        metric([], [], lang="python")


def test_score_returns_the_named_metrics():
    result = score(REFS, REFS, ["exact_match", "bleu"])
    assert list(result) == ["exact_match", "bleu"]
    with pytest.raises(UnknownNameError):
        score(REFS, REFS, ["bleu", "rouge"])


def test_asr_and_ftr_count_detector_hits():
    def detector(text: str) -> bool:
        return "rm -rf" in text

    predictions = ["x = 1", "os.system('rm -rf /')", "y = 2", "rm -rf ~"]
    assert asr(predictions, detector) == {"hits": 2, "total": 4, "rate": 50.0}
    assert ftr(predictions[:3], detector) == {"hits": 1, "total": 3, "rate": pytest.approx(100 / 3), "excluded": 0}
    with pytest.raises(ValueError):
        asr([], detector)


# The two published BLEU scorers, against values worked out by hand from their formulas.
TEN = " ".join(f"t{i}" for i in range(10))


def test_bleu_codexglue_is_smooth_bleu():
    from dece.evaluation.metrics import bleu_codexglue

    # first 5 of 10 tokens: every precision 1 (2-4 grams (k+1)/(k+1)); brevity exp(1 - 11/6)
    assert bleu_codexglue([TEN], [" ".join(TEN.split()[:5])]) == pytest.approx(100 * math.exp(1 - 11 / 6), abs=1e-9)
    # 4-token reference, 8-token output that starts with it: p1 4/8, p2 (3+1)/(7+1), p3 (2+1)/(6+1),
    # p4 (1+1)/(5+1); no brevity penalty
    expected = 100 * (4 / 8 * 4 / 8 * 3 / 7 * 2 / 6) ** 0.25
    assert bleu_codexglue(["a b c d"], ["a b c d e f g h"]) == pytest.approx(expected, abs=1e-9)
    # lower-cased, punctuation split off: "Return X." and "return x ." are the same 3 tokens
    assert bleu_codexglue(["Return X."], ["return x ."]) == pytest.approx(100.0)
    # the mean over rows
    assert bleu_codexglue(["a b c d", "Return X."], ["a b c d e f g h", "return x ."]) == \
        pytest.approx((expected + 100) / 2, abs=1e-9)


def test_bleu_dece_authors_is_the_authors_scorer():
    from dece.evaluation.metrics import bleu_dece_authors

    assert bleu_dece_authors([TEN], [" ".join(TEN.split()[:5])]) == pytest.approx(100 * math.exp(1 - 10 / 5), abs=1e-9)
    # no smoothing of the 2-4 grams: p1 4/8, p2 3/7, p3 2/6, p4 1/5
    assert bleu_dece_authors(["a b c d"], ["a b c d e f g h"]) == \
        pytest.approx(100 * (4 / 8 * 3 / 7 * 2 / 6 * 1 / 5) ** 0.25, abs=1e-9)
    # whitespace tokens, case kept: nothing matches
    assert bleu_dece_authors(["Return X."], ["return x ."]) == 0.0
    # one wrong last token of five
    got = bleu_dece_authors(["a b c d e"], ["a b c d x"])  # p1 4/5, p2 3/4, p3 2/3, p4 1/2
    assert got == pytest.approx(100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25, abs=1e-9)
    # a zero 4-gram count becomes epsilon 0.1 (method 1): 4 tokens, only the first two right
    got = bleu_dece_authors(["a b c d"], ["a b x y"])  # p1 2/4, p2 1/3, p3 0.1/2, p4 0.1/1
    assert got == pytest.approx(100 * (2 / 4 * 1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25, abs=1e-9)
