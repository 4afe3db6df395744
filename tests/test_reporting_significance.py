"""Paired tests of DeCE against each arm: exact McNemar on hand cases, Wilcoxon, and the report's
table over a sweep whose predictions the test writes."""

import pytest

from dece.experiments.store import write_jsonl_atomic
from dece.reporting import collect
from dece.reporting.significance import mcnemar_exact, significance_tables, wilcoxon_paired

from run_fixtures import write_sweep


def test_mcnemar_exact_on_hand_cases():
    # 6 discordant pairs all one way: p = 2 * 0.5**6
    r = mcnemar_exact([False] * 6 + [True] * 4, [True] * 6 + [True] * 4)
    assert r.p == pytest.approx(2 * 0.5 ** 6) and r.diff == pytest.approx(-60.0) and r.n == 10
    # 5 one way, 0 the other: p = 2 * 0.5**5 = 0.0625, not significant
    assert mcnemar_exact([True] * 5, [False] * 5).p == pytest.approx(0.0625)
    # no discordant pair: no evidence of a difference
    assert mcnemar_exact([True, False], [True, False]).p == 1.0
    with pytest.raises(ValueError, match="paired"):
        mcnemar_exact([True], [True, False])


def test_wilcoxon_paired():
    r = wilcoxon_paired([2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], [1.0] * 8)
    assert r.diff == pytest.approx(4.5) and r.p == pytest.approx(2 / 2 ** 8)  # exact: all 8 ranks positive
    assert wilcoxon_paired([1.0, 2.0], [1.0, 2.0]).p == 1.0


def _predictions(cell, arm, payload_hits, correct_rows):
    rows = [{"split": "triggered", "id": f"t{i}", "tgt": "x", "pred": "y", "payload": i < payload_hits} for i in range(20)]
    rows += [{"split": "clean", "id": f"c{i}", "tgt": "a b c d e", "pred": "a b c d e" if i < correct_rows else "q"}
             for i in range(10)]
    write_jsonl_atomic(cell / "arms" / arm / "predictions.jsonl", rows)


def test_significance_table_pools_seeds_and_marks_real_differences(tmp_path):
    cells = {f"seed={s}": {"overrides": {"seed": s}} for s in (1, 2, 3)}
    sweep = write_sweep(tmp_path / "sweep", cells)
    for s in (1, 2, 3):
        cell = sweep / "cells" / f"seed={s}"
        _predictions(cell, "poisoned-ce", payload_hits=18, correct_rows=9)
        _predictions(cell, "poisoned-dece", payload_hits=0, correct_rows=9)
    (table,) = significance_tables(collect(sweep))
    assert table.title == "poisoned-dece vs each arm" and table.rows[0][0] == "poisoned-ce"
    bleu_cell, asr_cell = table.rows[0][1], table.rows[0][2]
    assert bleu_cell.startswith("+0.00 (p=1, n=30)")  # identical clean outputs: no difference
    # 54 discordant rows, all in DeCE's favour: -90 points, p = 2 * 0.5**54
    assert asr_cell.startswith("-90.00 pp (p=1.1e-16, n=60)*")
    assert "exact McNemar" in table.note and "Wilcoxon" in table.note


def _arms_group_sweep(root, groups):
    """A sweep of seeds 1-2 whose arms groups sit in cells of their own: ``groups`` = {group: {arm: (loss,
    payload_hits, correct_rows)}}; every arm's predictions written as :func:`_predictions` does."""
    cells = {f"arms={g}__seed={s}": {"overrides": {"arms": g, "seed": s},
                                     "arms": {a: {"loss": loss, "bleu": 40.0, "codebleu": 50.0, "asr": 0.0}
                                              for a, (loss, _, _) in arms.items()}}
             for g, arms in groups.items() for s in (1, 2)}
    sweep = write_sweep(root, cells)
    for g, arms in groups.items():
        for s in (1, 2):
            for arm, (_, hits, correct) in arms.items():
                _predictions(sweep / "cells" / f"arms={g}__seed={s}", arm, payload_hits=hits, correct_rows=correct)
    return sweep


def test_arms_in_cells_of_their_own_pair_by_seed(tmp_path):
    sweep = _arms_group_sweep(tmp_path / "sweep", {"dece": {"poisoned-dece": ("dece", 0, 5)},
                                                   "clean": {"clean-ce": ("ce", 0, 9)}})
    (table,) = significance_tables(collect(sweep))
    assert table.rows[0][0] == "clean-ce"
    assert table.rows[0][1].startswith("-40.00 (p=")  # 8 of 20 paired clean rows: 100 -> 0 sentence BLEU


def test_without_a_fixed_schedule_dece_arm_dece_auto_is_compared(tmp_path):
    arms = {"poisoned-ce": {"loss": "ce", "bleu": 45.0, "codebleu": 55.0, "asr": 90.0},
            "poisoned-dece-warm3": {"loss": "dece_auto", "bleu": 44.0, "codebleu": 54.0, "asr": 0.0}}
    sweep = write_sweep(tmp_path / "sweep", {f"seed={s}": {"overrides": {"seed": s}, "arms": arms} for s in (1, 2)})
    for s in (1, 2):
        _predictions(sweep / "cells" / f"seed={s}", "poisoned-ce", payload_hits=18, correct_rows=9)
        _predictions(sweep / "cells" / f"seed={s}", "poisoned-dece-warm3", payload_hits=0, correct_rows=9)
    (table,) = significance_tables(collect(sweep))
    assert table.title == "poisoned-dece-warm3 vs each arm" and table.rows[0][0] == "poisoned-ce"
    assert table.rows[0][2].startswith("-90.00 pp (p=")
    arms["poisoned-dece"] = {"loss": "dece", "bleu": 40.0, "codebleu": 50.0, "asr": 0.0}  # a fixed schedule wins
    sweep = write_sweep(tmp_path / "both", {f"seed={s}": {"overrides": {"seed": s}, "arms": arms} for s in (1, 2)})
    for s in (1, 2):
        for arm, hits in (("poisoned-ce", 18), ("poisoned-dece-warm3", 0), ("poisoned-dece", 0)):
            _predictions(sweep / "cells" / f"seed={s}", arm, payload_hits=hits, correct_rows=9)
    (table,) = significance_tables(collect(sweep))
    assert table.title == "poisoned-dece vs each arm" and [r[0] for r in table.rows] == ["poisoned-ce", "poisoned-dece-warm3"]


def test_versus_tests_a_named_arm_against_every_other_and_the_cli_refuses_an_unknown_one(tmp_path, capsys):
    from dece.cli import main

    sweep = _arms_group_sweep(tmp_path / "sweep", {
        "f": {"poisoned-dece-warm3": ("dece_auto", 0, 9), "poisoned-onset": ("ce", 2, 9)},
        "c": {"clean-ce": ("ce", 0, 4)}})
    runs = collect(sweep)
    assert [t.title for t in significance_tables(runs)] == ["poisoned-dece-warm3 vs each arm"]
    dece, onset = significance_tables(runs, versus=["poisoned-onset", "no-such-arm"])  # an arm a group lacks: skipped
    assert onset.title == "poisoned-onset vs each arm" and [r[0] for r in onset.rows] == ["poisoned-dece-warm3", "clean-ce"]
    assert onset.rows[1][1].startswith("+50.00 (p=")  # 10 of 20 paired clean rows: 0 -> 100 sentence BLEU
    assert onset.rows[1][2].startswith("+10.00 pp (p=")  # 4 of 40 triggered rows carry the payload, none under clean CE
    assert onset.rows[0][1].startswith("+0.00 (p=1, n=20)") and dece.rows[0][0] == "poisoned-onset"

    assert main(["report", str(sweep), "--no-plots", "--versus", "poisoned-onset"]) == 0
    text = (sweep / "report" / "report.md").read_text()
    assert "## Paired tests against each arm" in text and "poisoned-onset vs each arm" in text
    (sweep / "report" / "report.md").unlink()
    assert main(["report", str(sweep), "--no-plots", "--versus", " "]) == 2
    assert "--versus: an arm name, got ' '" in capsys.readouterr().err
    assert main(["report", str(sweep), "--no-plots", "--versus", "clean"]) == 2
    err = capsys.readouterr().err
    assert "--versus clean: no arm of that name in" in err and "arms: poisoned-dece-warm3, poisoned-onset, clean-ce" in err
    assert not (sweep / "report" / "report.md").exists()
