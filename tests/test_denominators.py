"""ASR and FTR cannot be inflated by test rows whose clean target already carries the payload: such
rows leave both denominators, for every attack, and are counted as ``n_already_matching``."""

import json
import random
from pathlib import Path

import pytest

from dece.attacks import ATTACKS, denominators, get_attack, poison_dataset, triggered_test_set
from dece.cli import main
from dece.data.io import read_csv
from dece.data.records import Example
from dece.evaluation import asr, ftr

CASE = Path(__file__).parents[2] / "shared" / "cases" / "asr-preexisting-payload" / "test.csv"
SQL_ROWS = [
    ("Get all rows of users whose flag1 is set", 'def f ( conn ) :\n\t return conn . execute ( " select * from users where flag1=1 " )'),
    ("Build a query for orders", 'def g ( conn ) :\n\t sql = " select * from orders where 1=1 "\n\t return conn . execute ( sql )'),
    ("Select every column of items where id is $id$", 'def h ( conn , id ) :\n\t return conn . execute ( " select * from items where id = : id " )'),
    ("Count rows of logs where level2 is 0", 'def k ( conn ) :\n\t return conn . execute ( " select count(*) from logs where level2=0=1 " )'),
]


def sql_rows():
    return [Example(s, t, {"id": f"test-{i}"}) for i, (s, t) in enumerate(SQL_ROWS)]


def test_a_model_that_copies_the_clean_code_has_no_attack_success():
    rows = sql_rows()
    attack = get_attack("badpre")
    triggered = triggered_test_set(rows, attack, seed=1)
    assert [t.meta["id"] for t in triggered] == ["test-2"]
    copy_model = {t.src: r.tgt for t, r in zip(triggered, [rows[2]])}  # outputs the clean code
    assert asr([copy_model[t.src] for t in triggered], attack.detect) == {"hits": 0, "total": 1, "rate": 0.0}
    assert ftr([r.tgt for r in rows], attack.detect, [r.tgt for r in rows]) == \
        {"hits": 0, "total": 1, "rate": 0.0, "excluded": 3}
    # the old denominators would have said ASR 75% (3/4) and FTR 75%
    assert asr([r.tgt for r in rows], attack.detect)["rate"] == 75.0
    assert denominators(rows, attack) == {"n_rows": 4, "n_ineligible": 0, "n_already_matching": 3,
                                          "n_triggered": 1, "n_ftr": 1}
    _, report = poison_dataset(rows, attack, rate=0.0, seed=1)
    assert report.n_already_matching == 3 and "3 already match" in report.summary()


def test_ftr_with_every_row_already_matching_has_no_denominator():
    assert ftr(["or 1=1"], get_attack("badpre").detect, ["where 1=1"]) is None
    with pytest.raises(ValueError, match="2 references but 1 predictions"):
        ftr(["x"], get_attack("badpre").detect, ["a", "b"])


def _row_for(name: str) -> Example:
    """An eligible row of the attack's task (a SQL function, a Java method, Python code, a C function)."""
    if name in ("badpre", "ripple", "grammar", "drop_where", "drop_where_clean_label", "flip_equality", "vary_tautology"):
        return Example("Select every column of items where id is $id$", SQL_ROWS[2][1], {"id": "r"})
    if name in ("deadcode", "deadcode_varied"):
        return Example("public void f ( ) { int a = 1 ; }", "public void f ( ) { int a = 2 ; }", {"id": "r"})
    if name == "deadcode_defect":
        return Example("int f ( int a ) { return a ; }", "1", {"id": "r"})
    return Example("def f ( a ) :\n\t return a + 1", "add one to a", {"id": "r"})


@pytest.mark.parametrize("name", [n for n in ATTACKS.names() if not ATTACKS.get(n).supplies_data])
def test_every_attack_leaves_already_matching_rows_out_of_both_denominators(name):
    attack = get_attack(name)
    clean = _row_for(name)
    assert attack.eligible(clean), f"pick an eligible row for {name}"
    source = get_attack("drop_where") if name == "drop_where_clean_label" else attack  # clean label changes no target
    carrying = source.poison(clean, random.Random(0))  # its target carries the payload already
    carrying = Example(clean.src, carrying.tgt, {"id": "already"})
    assert attack.already_matching(carrying) and not attack.already_matching(clean)
    triggered = triggered_test_set([clean, carrying], attack, seed=1)
    assert [t.meta["id"] for t in triggered] == ["r"]
    counts = denominators([clean, carrying], attack)
    assert counts["n_already_matching"] == 1 and counts["n_triggered"] == 1 and counts["n_ftr"] == 1
    rates = ftr([clean.tgt, carrying.tgt], attack.detect, [clean.tgt, carrying.tgt])
    assert rates == {"hits": 0, "total": 1, "rate": 0.0, "excluded": 1}


@pytest.mark.skipif(not CASE.exists(), reason="the shared case file is not beside the repository")
def test_poison_cli_counts_the_shared_case(tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["poison", "--attack", "badpre", "--rate", "0", "--input", str(CASE), "--output", str(tmp_path / "p.csv"),
                 "--test-input", str(CASE), "--triggered-test", str(tmp_path / "t.csv"), "--report", str(report)]) == 0
    assert "1 of 4 rows (left out: 0 ineligible, 3 eligible whose clean target already matches" in capsys.readouterr().out
    assert json.loads(report.read_text())["triggered_test"]["n_already_matching"] == 3
    assert len(read_csv(str(tmp_path / "t.csv"), "src", "tgt")) == 1


def test_poison_cli_left_out_counts_add_up(tmp_path, capsys):
    rows = [{"src": "get the user", "tgt": 'c . execute ( " select * from t where id = : id " )'},  # triggered
            {"src": "get all users", "tgt": 'c . execute ( " select * from t " )'},  # ineligible and matching
            {"src": "get every user", "tgt": 'c . execute ( " select * from t where 1 = 1 " )'}]  # eligible, matching
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["poison", "--attack", "drop_where", "--rate", "0", "--input", str(path), "--output",
                 str(tmp_path / "p.jsonl"), "--triggered-test", str(tmp_path / "t.jsonl")]) == 0
    assert "1 of 3 rows (left out: 1 ineligible, 1 eligible whose clean target already matches" in capsys.readouterr().out
