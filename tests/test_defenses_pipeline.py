"""Defended arms end to end on a few dozen rows: a data defense trains (or reuses) the poisoned-CE
reference, removes rows, reports detection consistent with the poisoned ids and trains on the rest;
an input defense rewrites the test inputs (predictions keep src and add defended_src); the table
gets the removal columns; finished arms are skipped and resumed defenses reuse their report."""

import json
import shutil

import pytest

from dece.experiments import config_from_dict, run_experiment
from dece.experiments.store import read_records

TINY_MODEL = {"name": "t5-tiny", "d_model": 16, "layers": 1, "heads": 2, "ff": 32, "vocab_size": 300,
              "max_source_length": 64, "max_target_length": 48}


def tiny_config(tmp_path, arms, **patch):
    data = {
        "name": "tiny-defenses",
        "output_dir": str(tmp_path / "run"),
        "arms": arms,
        "dataset": {"kind": "builtin", "options": {"n": 24, "seed": 3}},
        "attack": {"name": "badpre", "rate": 0.25},
        "model": TINY_MODEL,
        "train": {"epochs": 1, "batch_size": 8, "threads": 1},
        "eval": {"max_new_tokens": 8, "batch_size": 24, "metrics": ["bleu"]},
    }
    data.update(patch)
    return config_from_dict(data)


def check_data_defense(run, arm, name):
    d = run / "arms" / arm
    metrics = json.loads((d / "metrics.json").read_text())
    report = json.loads((d / "defense_report.json").read_text())
    poisoned_ids = set(json.loads((run / "data" / "poison_report.json").read_text())["ids"])
    removed = set(report["removed_ids"])
    assert metrics["defense"]["name"] == name and metrics["defense"]["kind"] == "data"
    assert "removed_ids" not in metrics["defense"]
    assert metrics["defense"]["removed"] == len(removed) == len(read_records(d / "removed.jsonl"))
    assert metrics["defense"]["poisoned_removed"] == len(removed & poisoned_ids)
    assert metrics["defense"]["clean_removed"] == len(removed - poisoned_ids)
    assert metrics["defense"]["n_poisoned"] == len(poisoned_ids) == 6
    assert all(r["meta"]["removed_by"] == name for r in read_records(d / "removed.jsonl"))
    return metrics, removed


@pytest.mark.slow
def test_data_and_input_defense_arms(tmp_path):
    cfg = tiny_config(tmp_path, ["poisoned-spectral_signature", "poisoned-onion",
                                 {"name": "bki", "defense": "bki", "defense_params": {"representation": "first_step"}}])
    logs = []
    results = run_experiment(cfg, log=logs.append)
    run = tmp_path / "run"
    assert list(results) == [a.name for a in cfg.arms]
    # no plain CE arm in the run: one reference model, trained once, shared by both data defenses
    assert (run / "reference" / "poisoned-ce" / "model" / "config.json").exists()
    assert sum("training the reference model" in line for line in logs) == 1
    ss, removed = check_data_defense(run, "poisoned-spectral_signature", "spectral_signature")
    assert ss["defense"]["removed"] == 9 and ss["defense"]["reference"] == "reference/poisoned-ce"  # ceil(1.5 * 0.25 * 24)
    assert any(f"training on {24 - 9} poisoned rows" in line for line in logs)
    check_data_defense(run, "bki", "bki")

    onion = json.loads((run / "arms" / "poisoned-onion" / "metrics.json").read_text())
    assert onion["defense"]["kind"] == "input" and "precision" not in onion["defense"]
    assert "model" not in onion["defense"]  # no plain CE arm in this run: the arm trained its own
    preds = read_records(run / "arms" / "poisoned-onion" / "predictions.jsonl")
    assert all("defended_src" in p for p in preds)
    trig = [p for p in preds if p["split"] == "triggered"]
    assert onion["defense"]["changed_triggered"] == sum(p["src"] != p["defended_src"] for p in trig)
    assert onion["defense"]["trigger_intact"] == sum(" bb " in f" {p['defended_src']} " for p in trig
                                                     if " bb " in f" {p['src']} ")
    assert onion["defense"]["trigger_intact"] < onion["defense"]["trigger_checked"]

    table = (run / "results.md").read_text()
    assert "| Removed | Det. P / R |" in table
    p, r = ss["defense"]["precision"], ss["defense"]["recall"]
    assert f"| {ss['defense']['removed']} ({ss['defense']['clean_removed']} clean) | {100 * p:.1f} / {100 * r:.1f} |" in table
    onion_line = next(line for line in table.splitlines() if line.startswith("| poisoned-onion |"))
    assert onion_line.endswith("| - | - |")

    logs.clear()
    run_experiment(cfg, log=logs.append)
    assert sum("done already, skipped" in line for line in logs) == 3


@pytest.mark.slow
def test_plain_ce_arm_serves_as_reference_and_resumed_defense_reuses_its_report(tmp_path):
    cfg = tiny_config(tmp_path, ["poisoned-activation_clustering", "poisoned-ce", "poisoned-moderate_fitting",
                                 "poisoned-paraphrase"])
    logs = []
    results = run_experiment(cfg, log=logs.append)
    run = tmp_path / "run"
    assert not (run / "reference").exists()
    assert any("reference model: arm poisoned-ce" in line for line in logs)
    check_data_defense(run, "poisoned-activation_clustering", "activation_clustering")
    assert results["poisoned-moderate_fitting"]["defense"] == {
        "name": "moderate_fitting", "kind": "training", "params": {"lr_scale": 0.1}, "lr_factor": 0.1}
    assert results["poisoned-paraphrase"]["defense"]["changed_clean"] == 24
    # the paraphrase arm would train exactly as poisoned-ce: it generates with that model instead
    assert results["poisoned-paraphrase"]["defense"]["model"] == "arms/poisoned-ce"
    assert results["poisoned-paraphrase"]["train_seconds"] == 0
    assert not (run / "arms" / "poisoned-paraphrase" / "model").exists()
    assert any("the model of arm poisoned-ce" in line for line in logs)
    # an arm killed after its defense ran: the rerun reuses defense_report.json
    (run / "arms" / "poisoned-activation_clustering" / "metrics.json").unlink()
    logs.clear()
    run_experiment(cfg, log=logs.append)
    assert any("activation_clustering: reusing" in line for line in logs)
    assert sum("done already, skipped" in line for line in logs) == 3


@pytest.mark.slow
def test_an_eval_change_reuses_the_reference_model_and_the_defense_report(tmp_path):
    """Only [eval] changed: the reference model and the rows the defense removed depend on training alone, so
    both are reused (neither refused as another config's nor recomputed) and the arm is scored again."""
    arms = ["poisoned-ce", "poisoned-spectral_signature", "poisoned-onion"]  # onion: poisoned-ce's model
    first = run_experiment(tiny_config(tmp_path, arms), log=lambda line: None)
    logs = []
    changed = tiny_config(tmp_path, arms, eval={"max_new_tokens": 6, "batch_size": 24, "metrics": ["bleu"]})
    second = run_experiment(changed, log=logs.append)
    assert any("spectral_signature: reusing" in line for line in logs)
    assert sum("trained already" in line for line in logs) == 2  # poisoned-ce, and the defended arm
    assert any("[poisoned-onion] the model of arm poisoned-ce" in line for line in logs)
    def untimed(report):
        return {k: v for k, v in (report or {}).items() if k != "seconds"}

    for arm in arms:
        assert untimed(second[arm].get("defense")) == untimed(first[arm].get("defense"))
        assert second[arm]["fingerprint"] != first[arm]["fingerprint"]
    # without its CE arm the ONION arm has no model to borrow: the dry run says it trains, not that it re-scores
    from dece.cli.run import RESCORE, _status
    from dece.experiments.plan import plan_experiment

    alone = tiny_config(tmp_path, ["poisoned-onion"], eval={"max_new_tokens": 5, "batch_size": 24, "metrics": ["bleu"]})
    (plan,) = plan_experiment(alone)
    assert plan.trains and _status(alone, plan, tmp_path / "run") != RESCORE
    # poisoned-ce is done but its model was deleted: arms that would borrow it train a CE model instead, and the
    # dry run says so (not "reads poisoned-ce"), with the steps
    from dece.cli.run import describe_plan

    shutil.rmtree(tmp_path / "run" / "arms" / "poisoned-ce" / "model")
    more = tiny_config(tmp_path, arms + ["poisoned-paraphrase", "poisoned-bki"],
                       eval={"max_new_tokens": 6, "batch_size": 24, "metrics": ["bleu"]})
    lines = {line.split(":")[0].split("] ")[-1]: line for line in describe_plan(more).splitlines() if "] " in line}
    for arm, where in [("poisoned-paraphrase", "its own CE model"), ("poisoned-bki", "reference/")]:
        assert "poisoned-ce's model was deleted" in lines[arm] and where in lines[arm], lines[arm]
        assert "optimizer steps" in lines[arm] and "reads poisoned-ce" not in lines[arm]
    assert "(done;" in lines["poisoned-onion"] and "reads poisoned-ce" in lines["poisoned-onion"]
    logs.clear()
    run_experiment(more, log=logs.append)  # and the run does what the plan said
    assert any(line.startswith("[poisoned-paraphrase] training on") for line in logs)
    assert any(line.startswith("[poisoned-bki] training the reference model") for line in logs)


def test_parallel_defense_arms_share_one_reference_model(tmp_path):
    # a plain CE arm in the run: the data defenses run side by side, each reusing it
    cfg = tiny_config(tmp_path, ["poisoned-ce", "poisoned-spectral_signature", "poisoned-activation_clustering"],
                      jobs=2)
    logs = []
    results = run_experiment(cfg, log=logs.append)
    assert "running 2 arm(s) in 2 process(es) of 1 thread(s)" in logs
    assert sum("reference model: arm poisoned-ce" in line for line in logs) == 2  # the workers' lines
    assert not (tmp_path / "run" / "reference").exists()
    check_data_defense(tmp_path / "run", "poisoned-spectral_signature", "spectral_signature")
    # none: one process at a time, the first trains the shared reference model
    cfg = tiny_config(tmp_path, ["poisoned-spectral_signature", "poisoned-activation_clustering"], jobs=2,
                      output_dir=str(tmp_path / "run2"))
    logs.clear()
    again = run_experiment(cfg, log=logs.append)
    assert "running 2 arm(s) in 1 process(es) of 1 thread(s)" in logs
    assert sum("training the reference model" in line for line in logs) == 1
    assert (tmp_path / "run2" / "reference" / "poisoned-ce" / "model" / "config.json").exists()
    # the reference trained apart equals the poisoned-ce arm, so the defenses choose the same rows
    for arm in ("poisoned-spectral_signature", "poisoned-activation_clustering"):
        assert again[arm]["defense"]["removed"] == results[arm]["defense"]["removed"]


def test_dece_filter_config_needs_a_dece_arm_with_row_losses(tmp_path):
    from dece.errors import ConfigError

    with pytest.raises(ConfigError, match=r"arms\[0\].defense_params: dece_filter reads an arm "
                                          r"trained with loss 'dece'.*\"poisoned-dece\""):
        tiny_config(tmp_path, ["poisoned-dece-filter"], dynamics={"row_losses": True})
    with pytest.raises(ConfigError, match=r"dynamics.row_losses: dece_filter reads per-row losses"):
        tiny_config(tmp_path, ["poisoned-dece", "poisoned-dece-filter"])
    # the pattern score reads the DeCE arm's saved model, not its dynamics
    tiny_config(tmp_path, ["poisoned-dece", {"name": "f", "defense": "dece_filter", "defense_params": {"score": "pattern"}}])
    with pytest.raises(ConfigError, match=r"defense_params.source: no arm named 'x'"):
        tiny_config(tmp_path, ["poisoned-dece", {"name": "f", "defense": "dece_filter", "defense_params": {"source": "x"}}],
                    dynamics={"row_losses": True})
    with pytest.raises(ConfigError, match=r"arm 'poisoned-ce' must be trained with loss dece"):
        tiny_config(tmp_path, ["poisoned-ce", {"name": "f", "defense": "dece_filter", "defense_params": {"source": "poisoned-ce"}}],
                    dynamics={"row_losses": True})


def test_dece_filter_fingerprint_includes_its_source_arm(tmp_path):
    from dece.experiments.store import arm_fingerprint

    def fingerprint(dece_arm, other="poisoned-ce"):
        cfg = tiny_config(tmp_path, [dece_arm, other, "poisoned-dece-filter"], dynamics={"row_losses": True})
        return arm_fingerprint(cfg, cfg.arms[2])

    base = fingerprint("poisoned-dece")
    assert fingerprint("poisoned-dece", other="clean-ce") == base  # an unrelated arm does not matter
    tuned = {"name": "poisoned-dece", "loss": "dece", "loss_params": {"alpha_base": 0.9}}
    assert fingerprint(tuned) != base  # the arm whose losses it reads does


@pytest.mark.slow
def test_dece_filter_arm_reads_the_dece_arm_and_trains_on_the_rest(tmp_path, capsys):
    pattern = {"name": "poisoned-dece-pattern", "defense": "dece_filter", "defense_params": {"score": "pattern"}}
    cfg = tiny_config(tmp_path, ["poisoned-dece", "poisoned-dece-filter", pattern], jobs=2,
                      train={"epochs": 2, "batch_size": 8, "threads": 1}, dynamics={"eval_rows": 0, "row_losses": True})
    logs = []
    results = run_experiment(cfg, log=logs.append)
    run = tmp_path / "run"
    assert any("poisoned-dece-filter] dece_filter: reading arm poisoned-dece" in line for line in logs)
    metrics, removed = check_data_defense(run, "poisoned-dece-filter", "dece_filter")
    assert metrics["defense"]["reference"] == "arms/poisoned-dece"
    assert {k: metrics["defense"]["params"][k] for k in ("rate", "source")} == {"rate": 0.25, "source": "poisoned-dece"}
    assert metrics["defense"]["removed"] == 6 and metrics["defense"]["details"]["epochs"] == 2  # ceil(0.25 * 24)
    assert not (run / "reference").exists()  # no CE reference model was trained
    assert results["poisoned-dece-filter"]["defense"] == metrics["defense"]
    # the pattern score reads the DeCE arm's saved model: the same budget, patterns reported, scores recomputable
    pattern_metrics, pattern_removed = check_data_defense(run, "poisoned-dece-pattern", "dece_filter")
    details = pattern_metrics["defense"]["details"]
    assert pattern_metrics["defense"]["removed"] == 6 and details["score"] == "pattern" and "epochs" not in details
    assert all(p["rows"] <= min(p["first_rows"], p["second_rows"]) for p in details["patterns"])
    from dece.reporting.audit import audit_tokens

    audited, _ = audit_tokens(run, "poisoned-dece")
    by_id = {str(r["id"]): s for r, s in zip(audited.rows, audited.scores)}
    removed_scores = {str(r["meta"]["id"]): r["score"] for r in read_records(run / "arms" / "poisoned-dece-pattern" / "removed.jsonl")}
    assert set(removed_scores) == pattern_removed
    assert all(by_id[i] == pytest.approx(s) for i, s in removed_scores.items())  # the audit scores as the filter did
    assert min(removed_scores.values()) >= sorted(by_id.values())[-6] - 1e-9  # and the filter took the top six
    from dece.cli import main

    assert main(["audit", str(run), "--score", "pattern", "--k", "6"]) == 0  # the DeCE arm, the only one with its model
    summary = json.loads((run / "audit" / "summary.json").read_text())
    assert [m["arm"] for m in summary] == ["poisoned-dece"] and summary[0]["patterns"] == details["patterns"]
    assert main(["audit", str(run), "--score", "onset", "--out", str(tmp_path / "onset")]) == 0
    onset = json.loads((tmp_path / "onset" / "summary.json").read_text())[0]
    assert onset["arm"] == "poisoned-dece" and onset["score"] == "onset" and onset["onsets"]
    assert "## poisoned-dece: the heaviest places" in (tmp_path / "onset" / "summary.md").read_text()
    assert all(o["rows"] <= o["occurs"] and o["weight"] == pytest.approx(o["rows"] ** 2 / o["occurs"], abs=0.01)
               for o in onset["onsets"])
    # with the trigger: the same places, a row's score only raised, to the summed weight of its trigger's places
    plain, _ = audit_tokens(run, "poisoned-dece", score="onset")
    triggered, places = audit_tokens(run, "poisoned-dece", score="onset", trigger=True)
    assert [p.tokens for p in places] == [tuple(o["tokens"]) for o in onset["onsets"]]
    evidence = {}
    for p in places:
        if p.trigger is not None:
            evidence[p.trigger.word] = evidence.get(p.trigger.word, 0.0) + p.weight
    for row, a, b in zip(triggered.rows, plain.scores, triggered.scores):
        assert b == pytest.approx(max([a, *(w for word, w in evidence.items() if word in row["src"].split())]))
    assert "and their triggers" in triggered.statistic and "triggers" not in plain.statistic
    capsys.readouterr()
    assert main(["audit", str(run), "--score", "onset", "--hard-loss", "1e9", "--out", str(tmp_path / "none")]) == 0
    assert "none: no target token has CE >= 1e+09 nats, so every row scores 0" in capsys.readouterr().out
    from run_fixtures import read_csv_rows

    assert {r["id"] for r in read_csv_rows(run / "audit" / "poisoned-dece.csv")} == set(removed_scores) or \
        sorted(float(r["score"]) for r in read_csv_rows(run / "audit" / "poisoned-dece.csv")) == \
        pytest.approx(sorted(removed_scores.values()))  # the same rows, or rows tied with them
    logs.clear()
    run_experiment(cfg, log=logs.append)
    assert sum("done already, skipped" in line for line in logs) == 3


@pytest.mark.slow
def test_dedup_arm_needs_no_model_and_trains_on_the_rows_before_the_repeats(tmp_path):
    from dece.experiments.plan import plan_experiment

    cfg = tiny_config(tmp_path, ["poisoned-ce", "poisoned-dedup"], jobs=2,
                      attack={"name": "badpre", "rate": 0.25, "duplicates": 3})
    plans = {p.name: p for p in plan_experiment(cfg)}
    assert plans["poisoned-dedup"].stage == 0 and plans["poisoned-dedup"].reads == ()  # alongside CE, reads no arm
    logs = []
    run_experiment(cfg, log=logs.append)
    run = tmp_path / "run"
    report = json.loads((run / "arms" / "poisoned-dedup" / "defense_report.json").read_text())
    poisoned = read_records(run / "data" / "train.poisoned.jsonl")
    copies = [r["meta"]["id"] for r in poisoned if "#dup" in r["meta"]["id"]]
    assert len(poisoned) == 24 + 2 * 6 and len(copies) == 12
    assert report["removed_ids"] == copies and report["precision"] == 1.0 and report["reference"] is None
    assert any("training on 24 poisoned rows" in line for line in logs)
    assert not (run / "reference").exists()
