"""Report tables: the paper's layout (rows = arms, columns = attack x BLEU/CodeBLEU/ASR), seeds averaged,
other grid keys tabulated apart; per-run and early-learning tables; from synthetic folders (no training)."""

from dece.reporting import collect, paper_tables
from dece.reporting.tables import detail_table, early_learning_table

from run_fixtures import write_run, write_sweep


def arms(ce_asr, dece_asr, bleu=60.0):
    return {"poisoned-ce": {"loss": "ce", "bleu": bleu, "codebleu": 50.0, "asr": ce_asr, "asr_from": 3},
            "poisoned-dece": {"loss": "dece", "bleu": bleu - 2, "codebleu": 49.0, "asr": dece_asr, "asr_from": None, "alpha_base": 0.9}}


def test_single_run_paper_table(tmp_path):
    run = write_run(tmp_path / "run", name="one")
    [table] = paper_tables(collect(run))
    assert table.header == ["arm", "badpre BLEU", "badpre CodeBLEU", "badpre ASR"]
    assert table.rows == [["poisoned-ce", "60.00", "55.00", "90.00"], ["poisoned-dece", "58.00", "54.00", "0.00"]]
    assert table.title == "one"
    md = table.to_markdown()
    assert "| poisoned-ce | 60.00 | 55.00 | 90.00 |" in md
    html = table.to_html()
    assert '<th colspan="3" class="group">badpre</th>' in html and "<th>BLEU</th>" in html


def test_sweep_tables_average_seeds_and_split_other_keys(tmp_path):
    cells = {}
    for atk in ("badpre", "ripple"):
        for rate in (0.05, 0.1):
            for seed, ce in ((1, 80.0), (2, 90.0)):
                cells[f"{atk}-{rate}-{seed}"] = {"overrides": {"attack.name": atk, "attack.rate": rate, "seed": seed},
                                                 "attack": atk, "arms": arms(ce if atk == "badpre" else ce / 2, 1.0)}
    sweep = write_sweep(tmp_path / "sweep", cells)
    tables = paper_tables(collect(sweep))
    assert [t.title for t in tables] == ["attack.rate = 0.05", "attack.rate = 0.1"]
    t = tables[0]
    assert t.header == ["arm"] + [f"{a} {m}" for a in ("badpre", "ripple") for m in ("BLEU", "CodeBLEU", "ASR")]
    assert t.rows[0] == ["poisoned-ce", "60.00 ± 0.00", "50.00 ± 0.00", "85.00 ± 7.07",
                         "60.00 ± 0.00", "50.00 ± 0.00", "42.50 ± 3.54"]
    assert "Mean ± standard deviation over seeds" in t.note
    assert t.groups == [("", 1), ("badpre", 3), ("ripple", 3)]


def test_arms_from_different_cells_share_a_table_and_missing_metrics_show_a_dash(tmp_path):
    one = arms(90.0, 0.0)
    cells = {"a": {"overrides": {"arms": "poisoned-ce"}, "arms": {"poisoned-ce": one["poisoned-ce"]}},
             "b": {"overrides": {"arms": "poisoned-dece"}, "arms": {"poisoned-dece": {**one["poisoned-dece"], "dynamics": False}}}}
    [t] = paper_tables(collect(write_sweep(tmp_path / "s", cells)))
    assert [r[0] for r in t.rows] == ["poisoned-ce", "poisoned-dece"]
    runs = collect(tmp_path / "s")
    assert early_learning_table(runs[1]) is None


def test_detail_and_early_learning_tables(tmp_path):
    run = write_run(tmp_path / "run", name="r", arms={
        "poisoned-ce": {"loss": "ce", "bleu": 60.0, "codebleu": 50.0, "asr": 90.0, "asr_from": 3},
        "auto": {"loss": "dece_auto", "bleu": 59.0, "codebleu": 50.0, "asr": 0.0, "asr_from": None,
                 "alpha_base": 0.9, "triggered_at": 2},
    }, epochs=5)
    [rec] = collect(run)
    d = detail_table(rec)
    assert d.header[:2] == ["arm", "loss"] and "ASR" in d.header and "FTR" in d.header
    assert d.rows[0][d.header.index("ASR")] == "90.0% (90/100)"
    e = early_learning_table(rec)
    ce, auto = e.rows
    col = e.header.index
    assert ce[col("BLEU plateau epoch")] == "3" and ce[col("first epoch ASR >= 20%")] == "3"
    assert auto[col("first epoch ASR >= 20%")] == "never" and auto[col("DeCE-auto trigger")] == "2"
    assert ce[col("DeCE-auto trigger")] == "-" and ce[col("DeCE pull on it first -> last")] == "-"
    assert auto[col("DeCE pull on it first -> last")] == "50% -> 10%"  # the fixture's 0.5 / epoch, epochs 1 and 5


def test_detail_table_shows_defenses_and_removal_quality(tmp_path):
    report = {"removed": 12, "clean_removed": 4, "precision": 8 / 12, "recall": 0.8}
    run = write_run(tmp_path / "run", arms={
        "poisoned-ce": {"loss": "ce", "bleu": 60.0, "codebleu": 50.0, "asr": 90.0},
        "poisoned-spectral": {"loss": "ce", "defense": "spectral_signature", "defense_report": report,
                              "bleu": 58.0, "codebleu": 49.0, "asr": 40.0},
    })
    [rec] = collect(run)
    d = detail_table(rec)
    col = d.header.index
    plain, defended = d.rows
    assert plain[col("defense")] == "-" and defended[col("defense")] == "spectral_signature"
    assert defended[col("Removed")] == "12 (4 clean)" and defended[col("Det. P / R")] == "66.7 / 80.0"
    assert plain[col("Removed")] == "-" and d.header[-1] == "train s"


def test_shorthand_arm_names_are_parsed_as_dece_run_does(tmp_path):
    run = write_run(tmp_path / "run", arms={"poisoned-ce": {"loss": "ce", "bleu": 1.0, "codebleu": 1.0, "asr": 0.0}})
    config = (run / "config.toml").read_text()
    start, end = config.index("arms = ["), config.index("]\n\n[attack]") + 2
    (run / "config.toml").write_text(config[:start] + 'arms = ["poisoned-dece-onion", "poisoned-label-smoothing"]\n' + config[end:])
    [rec] = collect(run)
    assert [(a.name, a.loss, a.defense) for a in rec.arms] == [
        ("poisoned-dece-onion", "dece", "onion"), ("poisoned-label-smoothing", "label_smoothing", None)]


def test_robustness_map_finds_where_dece_breaks(tmp_path):
    from dece.reporting.robustness import holes_table, robustness_map

    cells = {}
    for variant, dup, dece_asrs in (("badpre", 1, (0.0, 0.0)), ("badpre", 4, (30.0, 50.0))):
        for seed, dece_asr in zip((1, 2), dece_asrs):
            cells[f"{dup}-{seed}"] = {"overrides": {"attack.name": variant, "attack.duplicates": dup, "seed": seed},
                                      "arms": arms(90.0, dece_asr)}
    cells["clean"] = {"overrides": {"attack.name": "badpre", "attack.duplicates": 4, "arms": "clean-ce", "seed": 1},
                      "arms": {"clean-ce": {"loss": "ce", "bleu": 63.0, "codebleu": 50.0, "asr": 0.0}}}
    m = robustness_map(collect(write_sweep(tmp_path / "sweep", cells)))
    assert m.settings == ["attack.duplicates=1, attack.name=badpre", "attack.duplicates=4, attack.name=badpre"]
    assert m.arms == ["poisoned-ce", "poisoned-dece", "clean-ce"] and m.deceptive == {"poisoned-dece"}
    assert m.asr[1][:2] == [90.0, 40.0] and m.asr[0][2] is None
    assert m.reference == ["poisoned-ce", "clean-ce"]  # clean-ce where the setting has one
    assert m.clean_delta[1][:2] == [-3.0, -5.0] and m.clean_delta[0][1] == -2.0
    holes = holes_table(m)
    assert holes.rows == [["attack.duplicates=4, attack.name=badpre", "poisoned-dece", "40.0", "-5.00"]]
    assert holes_table(m, threshold=50).rows == [] and "DeCE held" in holes_table(m, threshold=50).note


def test_the_report_of_a_sweep_over_settings_draws_the_map(tmp_path):
    from dece.reporting import build_report

    cells = {f"{rate}": {"overrides": {"attack.rate": rate}, "arms": arms(90.0, 20.0 if rate == 0.1 else 0.0)}
             for rate in (0.05, 0.1)}
    paths = build_report(write_sweep(tmp_path / "sweep", cells))
    assert paths["plots"]["robustness map"]["ASR and clean change"].stat().st_size > 1000
    md = paths["markdown"].read_text()
    assert "## Robustness map" in md and "| attack.rate=0.1 | poisoned-dece | 20.0 | -2.00 |" in md


def test_an_arm_copied_into_a_second_cell_counts_once(tmp_path):
    import json

    ce = {"loss": "ce", "bleu": 60.0, "codebleu": 50.0, "asr": 90.0}
    cells = {"arms=ce+dece__seed=1": {"overrides": {"arms": ["ce", "dece"], "seed": 1},
                                     "arms": {"poisoned-ce": ce, "poisoned-dece": {**ce, "loss": "dece", "asr": 0.0}}},
             "arms=ce+dece__seed=2": {"overrides": {"arms": ["ce", "dece"], "seed": 2},
                                     "arms": {"poisoned-ce": {**ce, "bleu": 50.0}, "poisoned-dece": {**ce, "loss": "dece"}}},
             "arms=ls+ce__seed=1": {"overrides": {"arms": ["ls", "ce"], "seed": 1},
                                   "arms": {"poisoned-ls": {**ce, "loss": "label_smoothing"}, "poisoned-ce": ce}}}
    sweep = write_sweep(tmp_path / "sweep", cells)
    for cell, seed in (("arms=ce+dece__seed=1", 1), ("arms=ls+ce__seed=1", 1), ("arms=ce+dece__seed=2", 2)):
        path = sweep / "cells" / cell / "arms" / "poisoned-ce" / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "fingerprint": f"ce-seed{seed}"}))
    row = next(r for r in paper_tables(collect(sweep))[0].rows if r[0] == "poisoned-ce")
    assert row[1] == "55.00 ± 7.07"  # seeds 1 and 2 once each, not 60, 50, 60
