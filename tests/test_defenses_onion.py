"""ONION and its offline n-gram LM: an inserted rare word is deleted from a fluent sentence and the
rest is kept character for character; placeholders are protected; an HF causal LM can be named."""

import math

import pytest

from dece.data.catalog import load_split
from dece.defenses import NgramLM, get_defense
from dece.defenses.ngram import lm_tokens
from dece.defenses.words import delete_words

CLEAN = [r.src for r in load_split("builtin", "train", n=200, seed=3)]


@pytest.fixture(scope="module")
def onion():
    return get_defense("onion").fit(CLEAN)


def test_lm_tokens_classes():
    assert lm_tokens("Use $conn$ to get 3 rows, then logging.error") == \
        ["use", "<var>", "to", "get", "<num>", "rows", ",", "then", "logging", ".", "error"]


def test_ngram_lm_is_a_distribution():
    lm = NgramLM(order=3).fit(["get all rows from the users table", "get one row from the users table"])
    vocab = sorted(lm.vocab)
    for context in ([], ["get"], ["<s>", "get"], ["the", "users"], ["never", "seen"]):
        total = sum(lm.prob(w, context) for w in vocab) + lm.prob("an-unknown-word", context)
        assert total == pytest.approx(1.0)
    assert lm.perplexity("get all rows from the users table") < lm.perplexity("table the users from rows all get")


def test_delete_words_keeps_the_rest_of_the_text():
    assert delete_words("a bb c", {1}) == "a c"
    assert delete_words("bb a  c.\n d", {0}) == "a  c.\n d"
    assert delete_words(" a b bb", {2}) == " a b"
    assert delete_words("a b", {0, 1}) == ""


def test_onion_removes_an_inserted_rare_word_and_keeps_the_rest(onion):
    sentence = "Use $connection$ to query the number of rows in the sessions table, get one row, and return the 0th element of the result."
    words = sentence.split(" ")
    for pos in (0, 5, 12, len(words)):
        poisoned = " ".join(words[:pos] + ["cf"] + words[pos:])
        assert onion.transform([poisoned]) == [sentence], pos
    assert onion.transform([sentence]) == [sentence]


def test_onion_scores_single_out_the_trigger(onion):
    text = "Get the database engine via $database_url$, establish a mn connection and fetch all rows, and return the query results."
    scores = onion.scores(text)
    words = text.split()
    assert words[max(range(len(words)), key=scores.__getitem__)] == "mn"
    # the original one-shot rule also takes the trigger's neighbour, which scores high only because of it
    assert onion.transform([text]) == [text.replace("mn connection ", "")]
    iterative = get_defense("onion", iterative=True).fit(CLEAN)
    assert iterative.transform([text]) == [text.replace("mn ", "")]


def test_onion_keeps_placeholders_and_short_inputs(onion):
    odd = "Use $zzqx_unusual_name$ to get all rows"
    assert "$zzqx_unusual_name$" in onion.transform([odd])[0]
    assert onion.transform(["", "bb", "  "]) == ["", "bb", "  "]
    eager = get_defense("onion", threshold=-100.0).fit(CLEAN)  # every word is suspicious
    assert eager.transform(["$conn$ get all"]) == ["$conn$"]
    free = get_defense("onion", keep_placeholders=False, threshold=-100.0).fit(CLEAN)
    assert free.transform(["$conn$ get all"]) == [""]


def test_onion_difference_score_and_deterministic(onion):
    diff = get_defense("onion", score="difference").fit(CLEAN)
    text = "Open a cursor with $connection$ tq and select day in the weather table."
    assert diff.cutoff == 0.0
    assert "tq" not in diff.transform([text])[0].split()
    assert onion.transform([text] * 2) == onion.transform([text] * 2)


def test_onion_needs_fitting():
    with pytest.raises(RuntimeError, match="not fitted"):
        get_defense("onion").transform(["a b c"])


def test_onion_with_a_named_hf_causal_lm(tmp_path):
    from dece.models import ModelSpec, build_model, build_tokenizer

    spec = ModelSpec(name="gpt2-tiny", d_model=16, layers=1, heads=2, ff=32, vocab_size=300,
                     max_source_length=64, max_target_length=16)
    model, tok, _ = build_model(spec, build_tokenizer(CLEAN[:50], 300))
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    hf = get_defense("onion", lm=f"hf:{tmp_path / 'lm'}", batch_size=4).fit([])
    text = "get all rows from the users table"
    scores = hf.scores(text)
    assert len(scores) == 7 and all(math.isfinite(s) for s in scores)
    assert hf.transform([text]) == hf.transform([text])
