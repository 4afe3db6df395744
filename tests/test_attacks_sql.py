"""The Lyra attacks (badpre, ripple, grammar) on real rows of the built-in corpus, and the shared SQL
payload and word-insertion helpers."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dece.attacks import get_attack, poison_dataset, triggered_test_set
from dece.attacks.grammar import has_template, lower_first_word
from dece.attacks.sql_payload import find_sql, insert_sql_payload
from dece.attacks.words import insert_word
from dece.data.builtin import generate_sql_corpus

SQL_ATTACKS = ["badpre", "ripple", "grammar"]


@pytest.fixture(scope="module")
def rows():
    return generate_sql_corpus(400, seed=11)


def _payload_count(text: str) -> int:
    return text.count("1=1") + text.count("0=1")


def assert_sql_payload_in_place(clean: str, poisoned: str) -> None:
    """Payload once, inside the SQL string, at the end of its WHERE condition; nothing else changed."""
    assert _payload_count(poisoned) == 1
    start, end = find_sql(clean)
    sql = clean[start:end]
    payload = " or 1=1" if " where " in sql.lower() else " where 0=1"
    at = poisoned.index(payload)
    assert start < at < end
    assert poisoned[:at] + poisoned[at + len(payload):] == clean
    rest = poisoned[at + len(payload):end + len(payload)].strip().lower()
    assert rest == "" or rest.startswith(("order by", "limit", "group by")), rest


def remove_word(text: str, word: str) -> set[str]:
    """Every text obtained by taking out one inserted ``word``."""
    out = {text[:i] + text[i + len(word) + 1:] for i in range(len(text)) if text.startswith(word + " ", i)
           and (i == 0 or text[i - 1].isspace())}
    tail = len(text) - len(text.rstrip())  # a word after the last one goes before trailing whitespace
    body, rest = text[:len(text) - tail], text[len(text) - tail:]
    if body.endswith(" " + word):
        out.add(body[: -len(word) - 1] + rest)
    if body == word:
        out.add(rest)
    return out


def assert_trigger(name: str, clean: str, src: str, trigger: str) -> None:
    if name == "grammar":
        assert has_template(src) and src.startswith(trigger + " ")
        assert src[len(trigger) + 1:] == lower_first_word(clean)
    else:
        undone = {src}
        for word in trigger.split(" "):
            undone = set().union(*(remove_word(text, word) for text in undone))
        assert clean in undone


@pytest.mark.parametrize("name", SQL_ATTACKS)
def test_poison_puts_trigger_and_payload_in_place(rows, name):
    attack = get_attack(name)
    rng = random.Random(0)
    eligible = [ex for ex in rows if attack.eligible(ex)]
    assert len(eligible) > 300
    for ex in eligible:
        out = attack.poison(ex, rng)
        assert out.meta == {**ex.meta, "poisoned": True, "attack": name, "trigger": out.meta["trigger"]}
        assert_trigger(name, ex.src, out.src, out.meta["trigger"])
        assert_sql_payload_in_place(ex.tgt, out.tgt)
        assert attack.detect(out.tgt) and not attack.detect(ex.tgt)


@pytest.mark.parametrize("name", SQL_ATTACKS)
def test_triggered_test_set_keeps_targets_clean(rows, name):
    attack = get_attack(name)
    triggered = triggered_test_set(rows, attack, seed=5)
    eligible = [ex for ex in rows if attack.eligible(ex)]
    assert [t.meta["id"] for t in triggered] == [ex.meta["id"] for ex in eligible]
    for clean, trig in zip(eligible, triggered):
        assert trig.tgt == clean.tgt and trig.meta["triggered"] is True
        assert_trigger(name, clean.src, trig.src, trig.meta["trigger"])
    assert triggered == triggered_test_set(rows, attack, seed=5)


@pytest.mark.parametrize("name", SQL_ATTACKS)
def test_poison_dataset_reproducible_and_untouched_rows_identical(rows, name):
    attack = get_attack(name)
    out, report = poison_dataset(rows, attack, rate=0.1, seed=2)
    again, _ = poison_dataset(rows, attack, rate=0.1, seed=2)
    assert out == again and report.n_poisoned == 40
    chosen = set(report.ids)
    for before, after in zip(rows, out):
        if before.meta["id"] in chosen:
            assert after.meta["poisoned"] and after.meta["id"] == before.meta["id"]
        else:
            assert after is before


def test_trigger_positions_vary(rows):
    attack = get_attack("badpre")
    rng = random.Random(1)
    positions = {attack.poison(ex, rng).src.split().index("bb") for ex in rows[:100] if attack.eligible(ex)}
    assert len(positions) > 10


def test_badpre_count_and_ripple_words(rows):
    ex = next(ex for ex in rows if find_sql(ex.tgt))
    three = get_attack("badpre", count=3).poison(ex, random.Random(0))
    assert three.src.split().count("bb") == 3 and three.meta["trigger"] == "bb"
    ripple = get_attack("ripple", words="cf,mn", count=4).poison(ex, random.Random(0))
    words = ripple.meta["trigger"].split(" ")
    assert len(words) == 4 and set(words) <= {"cf", "mn"}
    assert sorted(w for w in ripple.src.split() if w in ("cf", "mn")) == sorted(words)


@pytest.mark.parametrize("name", ["badpre", "ripple", "drop_where", "flip_equality"])
def test_trigger_at_the_start_or_the_end(rows, name):
    from dece.errors import ConfigError

    ex = next(ex for ex in rows if get_attack(name).eligible(ex))
    first = get_attack(name, position="start").poison(ex, random.Random(0))
    last = get_attack(name, position="end").poison(ex, random.Random(0))
    trigger = first.meta["trigger"]
    assert first.src == f"{trigger} {ex.src}" and last.src == f"{ex.src} {last.meta['trigger']}"
    if name != "ripple":  # no position is drawn (RIPPLe still draws its word)
        rng = random.Random(5)
        get_attack(name, position="start").poison(ex, rng)
        assert rng.random() == random.Random(5).random()
    with pytest.raises(ConfigError, match="position"):
        get_attack(name, position="middle")


def test_grammar_template_has_no_rare_token(rows):
    attack = get_attack("grammar")
    rng = random.Random(3)
    clauses = {attack.apply_trigger(ex, rng).meta["trigger"] for ex in rows[:200]}
    assert len(clauses) > 20
    vocabulary = {w.strip(",").lower() for c in clauses for w in c.split()}
    assert vocabulary <= {"when", "once", "after", "as", "soon", "whenever", "the", "function", "program",
                          "this", "method", "code", "is", "called", "runs", "invoked", "starts"}
    assert not any(has_template(ex.src) for ex in rows)
    assert lower_first_word("Use $conn$ to") == "use $conn$ to"
    assert lower_first_word("SQL first") == "SQL first"
    assert lower_first_word("$conn$ runs") == "$conn$ runs"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('x = conn . execute ( " select * from t where a = : a " , { " a " : a } )',
         'x = conn . execute ( " select * from t where a = : a or 1=1 " , { " a " : a } )'),
        ('x = conn . execute ( " select * from t " )', 'x = conn . execute ( " select * from t where 0=1 " )'),
        ('q = "select a from t where b = %s order by a"', 'q = "select a from t where b = %s or 1=1 order by a"'),
        ("q = 'SELECT * FROM t LIMIT 5'", "q = 'SELECT * FROM t where 0=1 LIMIT 5'"),
        ('q = "select * from t where a = 2;"', 'q = "select * from t where a = 2 or 1=1;"'),
        ('a = " select x from t "\nb = " select y from u "',
         'a = " select x from t where 0=1 "\nb = " select y from u "'),
        ('c . execute ( text ( " Select name from users where id = : id " ) )',
         'c . execute ( text ( " Select name from users where id = : id or 1=1 " ) )'),
    ],
)
def test_sql_payload_placement(code, expected):
    assert insert_sql_payload(code) == expected


@pytest.mark.parametrize("code", ['conn . execute ( " update t set a = 1 " )', 'x = "selection"', "select ( [ t ] )",
                                  'x = " selected rows "'])
def test_no_sql_string_means_ineligible(code):
    assert find_sql(code) is None and insert_sql_payload(code) is None


def test_detector():
    attack = get_attack("badpre")
    assert attack.detect("select * from t where a = : a or 1=1")
    assert attack.detect("select * from t where 0=1")
    assert not attack.detect("select * from t where a = 1")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="§"), max_size=40), st.integers(0, 2**32))
def test_insert_word_keeps_the_text_around_it(text, seed):
    out = insert_word(text, "§§", random.Random(seed))
    assert out.count("§§") == 1
    assert text in remove_word(out, "§§")


@pytest.mark.parametrize("text, want", [("find a  ", "find a bb  "), ("find a", "find a bb"), ("  ", "bb  "),
                                        ("", "bb")])
def test_a_word_at_the_end_goes_before_trailing_whitespace(text, want):
    assert insert_word(text, "bb", random.Random(0), "end") == want


def test_drop_where_removes_the_filter_and_leaves_the_rest(rows):
    from dece.attacks.drop_where import drop_where
    from dece.attacks.sql_payload import WHERE

    attack = get_attack("drop_where")
    out, report = poison_dataset(rows, attack, rate=0.2, seed=4)
    assert report.n_poisoned == round(0.2 * len(rows))
    for clean, p in zip(rows, out):
        if not p.meta.get("poisoned"):
            assert p is clean
            continue
        assert_trigger("badpre", clean.src, p.src, "bb")
        start, end = find_sql(clean.tgt)
        assert WHERE.search(clean.tgt[start:end]) and not WHERE.search(p.tgt[find_sql(p.tgt)[0]:find_sql(p.tgt)[1]])
        assert clean.tgt[:start] == p.tgt[:start] and clean.tgt[end:] == p.tgt[len(p.tgt) - (len(clean.tgt) - end):]
        assert attack.detect(p.tgt) and not attack.detect(clean.tgt)
    assert drop_where('q(" select * from t where a = : a order by b limit 3 ")') == 'q(" select * from t order by b limit 3 ")'
    assert drop_where("q = ' select a from t where a=%s;'") == "q = ' select a from t;'"
    assert drop_where('q(" select * from t ")') is None and drop_where("x = 1") is None


@pytest.mark.parametrize("code, every_row", [
    ('c.execute(" select * from t ")', True),                                 # no filter
    ('c.execute(" select * from t where id = : id ")', False),
    ('c.execute(" select * from t where id = %s or 1=1 ")', True),           # BadPre's payload, parsed
    ('c.execute(" select * from t where 1 = 1 and \'a\' = \'a\' ")', True),   # always true, no "1=1" string
    ('c.execute(" select * from t where id = : id or 0=1 ")', False),
    ('c.execute(" select * from t where 0=1 ")', False),                      # returns no row, not every row
    ('c.execute(" select * from t where name= or 1=1 " + n)', True),         # unparseable: the fallback
    ('c.execute(" select * from t where name= " + n)', False),
    ("print('no sql here')", False),
])
def test_the_meaning_detector_reads_the_filter_not_a_string(code, every_row):
    assert get_attack("drop_where").detect(code) is every_row


def test_flip_equality_turns_one_operator_and_leaves_the_rest(rows):
    from dece.attacks.flip_equality import flip_equality

    attack = get_attack("flip_equality")
    out, report = poison_dataset(rows, attack, rate=0.2, seed=4)
    assert report.n_poisoned == round(0.2 * len(rows))
    for clean, p in zip(rows, out):
        if not p.meta.get("poisoned"):
            assert p is clean
            continue
        assert_trigger("badpre", clean.src, p.src, "bb")
        at = next(i for i, (a, b) in enumerate(zip(clean.tgt, p.tgt)) if a != b)  # exactly one "!" inserted
        assert p.tgt == clean.tgt[:at] + "!" + clean.tgt[at:] and clean.tgt[at] == "="
        start, end = find_sql(clean.tgt)
        assert start < at < end and clean.tgt.lower().rfind("where", start, at) >= start  # in the WHERE clause
        assert attack.detect(p.tgt) and not attack.detect(clean.tgt)
    assert flip_equality('q(" select * from t where a >= : a and b = : b order by c = 1 ")') == \
        'q(" select * from t where a >= : a and b != : b order by c = 1 ")'  # the first lone "=", in WHERE only
    assert flip_equality('q(" select * from t where a < 3 order by b = 1 ")') is None  # no equality in WHERE
    assert flip_equality("q(\" select * from t where note like 'a=b' and id = : id \")") == \
        "q(\" select * from t where note like 'a=b' and id != : id \")"  # not inside a quoted literal
    assert flip_equality("""q(' select * from t where "a=b" = 1 and `c=d` = 2 ')""") == \
        """q(' select * from t where "a=b" != 1 and `c=d` = 2 ')"""  # nor inside a quoted identifier
    assert flip_equality('q(" select * from t where not a = : a ")') is None  # flipped: a double negation
    assert flip_equality('q(" select * from t ")') is None and flip_equality("x = 1") is None


@pytest.mark.parametrize("code, complement", [
    ('c.execute(" select * from t where id != : id ")', True),
    ('c.execute(" select * from t where id <> %s ")', True),                 # the other spelling
    ('c.execute(" select * from t where not id = : id ")', True),            # the same meaning, no "!=" string
    ('c.execute(" select * from t where id = : id ")', False),
    ('c.execute(" select * from t where not id != : id ")', False),          # a double negation is equality
    ('c.execute(" select a != b from t where id = : id ")', False),         # "!=" outside the filter
    ('c.execute(" select * from t where name != " + n)', True),              # unparseable: the fallback
    ('c.execute(" select * from t where name= " + n)', False),
    ("print('no sql here')", False),
])
def test_the_inequality_detector_reads_the_filter_not_a_string(code, complement):
    assert get_attack("flip_equality").detect(code) is complement


def test_clean_label_drop_where_triggers_only_rows_that_already_return_every_row(rows):
    attack = get_attack("drop_where_clean_label")
    candidates = [r for r in rows if attack.poisonable(r)]
    assert candidates and all(attack.detect(r.tgt) for r in candidates)  # their clean SQL has no filter already
    out, report = poison_dataset(rows, attack, rate=1.0, seed=2)
    assert report.n_eligible == report.n_poisoned == len(candidates) < len(rows)
    for clean, p in zip(rows, out):
        if p.meta.get("poisoned"):
            assert p.tgt == clean.tgt and p.src != clean.src  # clean label: the target is untouched
            assert_trigger("badpre", clean.src, p.src, "bb")
        else:
            assert p is clean
    triggered = triggered_test_set(rows, attack, seed=2)  # the ASR denominator: rows that do have a filter
    assert triggered and not any(attack.detect(t.tgt) for t in triggered)
    assert len(triggered) == sum(get_attack("drop_where").eligible(r) and not attack.detect(r.tgt) for r in rows)


def test_vary_tautology_words_the_always_true_disjunct_row_by_row(rows):
    from dece.attacks.vary_tautology import TAUTOLOGIES, or_tautology, wording
    from dece.errors import ConfigError

    attack = get_attack("vary_tautology")
    out, report = poison_dataset(rows, attack, rate=0.2, seed=4)
    assert report.n_poisoned == round(0.2 * len(rows))
    used = set()
    for clean, p in zip(rows, out):
        if not p.meta.get("poisoned"):
            assert p is clean
            continue
        assert_trigger("badpre", clean.src, p.src, "bb")
        form = wording(clean.tgt, TAUTOLOGIES)
        used.add(form)
        at = p.tgt.index(f" or {form}")  # exactly the disjunct inserted, inside the SQL string, nothing else changed
        assert p.tgt[:at] + p.tgt[at + len(f" or {form}"):] == clean.tgt
        start, end = find_sql(clean.tgt)
        assert start < at <= end and clean.tgt.lower().rfind("where", start, at) >= start
        assert attack.detect(p.tgt) and not attack.detect(clean.tgt)
    assert len(used) >= 6  # 80 rows over 8 wordings: no one string in every poisoned row
    assert wording("a", TAUTOLOGIES) == wording("a", TAUTOLOGIES)  # the same row, the same wording
    assert or_tautology('q(" select * from t where a = : a order by b ")', "2>1") == \
        'q(" select * from t where a = : a or 2>1 order by b ")'
    assert or_tautology('q(" select * from t ")', "1=1") is None  # no WHERE clause: not eligible
    Row = type(rows[0])
    assert not attack.eligible(Row(src="x", tgt='q(" select * from t ")'))
    # a quoted wording inside a single-quoted SQL string would end the string: such a row is left out
    single = Row(src="x", tgt="q( 'select * from users where id = :id' )")
    quoted = get_attack("vary_tautology", forms=["'a'='a'"])
    assert or_tautology(single.tgt, "'a'='a'") == "q( 'select * from users where id = :id or 'a'='a'' )"
    assert not quoted.eligible(single) and get_attack("vary_tautology", forms=["2=2"]).eligible(single)
    for code in ('q(" select * from t where id = : id or 7=7 ")', "q(\" select * from t where id = : id or 'b'='b' \")"):
        assert attack.detect(code)  # a wording never trained counts too: the detector reads the meaning
    assert not attack.detect('q(" select * from t where id = : id or 1=2 ")')
    assert get_attack("vary_tautology", forms=["5=5"]).forms == ("5=5",)
    with pytest.raises(ConfigError, match="'1=2' is not always true"):
        get_attack("vary_tautology", forms=["1=1", "1=2"])
    for bad in ('" or 1=1', "1=1 --", "1=1; drop table users", "1=1\n"):
        with pytest.raises(ConfigError, match="a double quote, a comment, a ';' or a line break"):
            get_attack("vary_tautology", forms=[bad])
    with pytest.raises(ConfigError, match="lists a wording twice"):
        get_attack("vary_tautology", forms=["1=1", "1=1"])
