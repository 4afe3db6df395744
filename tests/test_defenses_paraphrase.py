"""The paraphrase defense: deterministic, changes the wording, keeps identifiers and $placeholders$,
moves a fronted clause (the syntactic trigger's shape) to the back; a named HF seq2seq model's
outputs that lose a placeholder fall back to the rules."""

import re
import random

from dece.attacks import get_attack
from dece.data.catalog import load_split
from dece.defenses import get_defense
from dece.defenses.paraphrase import move_fronted_clause, rephrase, swap_words

ROWS = load_split("builtin", "test", n=30, seed=3)
PLACEHOLDER = re.compile(r"\$[^$\s]+\$")
IDENT = re.compile(r"\b\w+_\w+\b|\b\w+\.\w+\b|\"[^\"]*\"")


def test_rules_are_deterministic_change_wording_and_keep_identifiers():
    d = get_defense("paraphrase")
    sources = [r.src for r in ROWS]
    out = d.transform(sources)
    assert out == get_defense("paraphrase").transform(sources)
    assert sum(a != b for a, b in zip(sources, out)) >= 0.9 * len(sources)
    for a, b in zip(sources, out):
        assert sorted(PLACEHOLDER.findall(a)) == sorted(PLACEHOLDER.findall(b))
        assert sorted(IDENT.findall(a)) == sorted(IDENT.findall(b)), (a, b)


def test_swaps_keep_case_and_skip_identifiers():
    assert swap_words("Get all rows, then fetch every row") == "Obtain all records, then retrieve each record"
    assert swap_words("use get_rows and logging.get with $get$ and 'get' or get(x)") == \
        "utilize get_rows and logging.get with $get$ and 'get' or get(x)"


def test_fronted_clause_moves_back_and_breaks_the_grammar_trigger():
    assert move_fronted_clause("When the function is called, use $conn$ to get rows.") == \
        "Use $conn$ to get rows, when the function is called."
    assert move_fronted_clause("Use $conn$ to get rows.") == "Use $conn$ to get rows."
    grammar = get_attack("grammar")
    rng = random.Random(0)
    for row in ROWS[:10]:
        triggered = grammar.apply_trigger(row, rng).src
        assert grammar_template(triggered) and not grammar_template(rephrase(triggered))


def grammar_template(text):
    from dece.attacks.grammar import has_template

    return has_template(text)


def test_drop_unknown_removes_words_never_seen_in_clean_text():
    d = get_defense("paraphrase", drop_unknown=True).fit([r.src for r in ROWS])
    text = "Use $connection$ to query the number of bb rows in the sessions table."
    assert d.transform([text]) == ["Utilize $connection$ to query the count of records in the sessions table."]


def test_hf_model_outputs_losing_placeholders_fall_back_to_rules(tmp_path):
    from dece.models import ModelSpec, build_model, build_tokenizer

    spec = ModelSpec(name="t5-tiny", d_model=16, layers=1, heads=2, ff=32, vocab_size=300,
                     max_source_length=64, max_target_length=16)
    model, tok, _ = build_model(spec, build_tokenizer([r.src for r in ROWS], 300))
    model.save_pretrained(tmp_path / "p")
    tok.save_pretrained(tmp_path / "p")
    d = get_defense("paraphrase", model=f"hf:{tmp_path / 'p'}", num_beams=1, max_new_tokens=8).fit([])
    sources = [r.src for r in ROWS[:3]]
    out = d.transform(sources)  # an untrained model's output has no placeholders
    assert out == [rephrase(s) for s in sources] and d.fallbacks == 3
