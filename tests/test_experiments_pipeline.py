"""`dece run` end to end on a few dozen rows: the files and the table are produced and consistent
(the numbers of so small a run mean nothing and are not asserted), finished arms are not rerun, a
changed config is refused, and pretraining is cached."""

import json
from pathlib import Path

import pytest

from dece.cli import main
from dece.errors import ConfigError
from dece.experiments import config_from_dict, run_experiment
from dece.experiments.config import dump_config
from dece.experiments.store import read_records

TINY_MODEL = {"name": "t5-tiny", "d_model": 16, "layers": 1, "heads": 2, "ff": 32, "vocab_size": 300,
              "max_source_length": 64, "max_target_length": 48}


def tiny_config(tmp_path, **patch):
    data = {
        "name": "tiny",
        "output_dir": str(tmp_path / "run"),
        "arms": ["clean-ce", "poisoned-ce", "poisoned-dece"],
        "dataset": {"kind": "builtin", "options": {"n": 24, "seed": 3}},
        "attack": {"name": "badpre", "rate": 0.25},
        "model": TINY_MODEL,
        "train": {"epochs": 2, "batch_size": 8, "threads": 1},
        "eval": {"max_new_tokens": 16, "batch_size": 24, "metrics": ["bleu", "exact_match"]},
        "dynamics": {"eval_rows": 4, "loss_rows": 6, "row_losses": True},
    }
    data.update(patch)
    return config_from_dict(data)


@pytest.mark.slow
def test_pipeline_writes_consistent_files_and_resumes(tmp_path):
    cfg = tiny_config(tmp_path)
    logs = []
    results = run_experiment(cfg, log=logs.append)
    run = tmp_path / "run"
    assert (run / "config.toml").exists() and (run / "results.md").exists()
    report = json.loads((run / "data" / "poison_report.json").read_text())
    assert report["n_poisoned"] == 6 and report["n_rows"] == 24
    poisoned_rows = read_records(run / "data" / "train.poisoned.jsonl")
    assert sum(bool(r["meta"].get("poisoned")) for r in poisoned_rows) == 6
    triggered = read_records(run / "data" / "test.triggered.jsonl")
    table = (run / "results.md").read_text()
    for arm in cfg.arms:
        d = run / "arms" / arm.name
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics == json.loads(json.dumps(results[arm.name]))
        preds = read_records(d / "predictions.jsonl")
        clean = [p for p in preds if p["split"] == "clean"]
        trig = [p for p in preds if p["split"] == "triggered"]
        assert len(clean) == 24 and len(trig) == len(triggered)
        assert all(p["meta"].get("triggered") for p in trig)
        # ASR and FTR are recomputable from the predictions file
        assert metrics["asr"]["hits"] == sum(p["payload"] for p in trig)
        assert metrics["ftr"]["hits"] == sum(p["payload"] for p in clean)
        assert f"| {arm.name} | {metrics['bleu']:.2f} | {metrics['exact_match']:.2f} |" in table
        dyn = read_records(d / "dynamics.jsonl")
        assert [r["epoch"] for r in dyn] == [1, 2]
        assert all(len(r["row_losses"]) == 24 for r in dyn)
        assert ("alpha" in dyn[0]) == (arm.loss == "dece")
        for r in dyn:  # DeCE's share of CE's pull on the first payload token, where one lies inside the targets
            assert ("pull_payload" in r) == (arm.loss == "dece" and r.get("loss_payload") is not None)
            assert 0.0 < r.get("pull_payload", 0.5) < 1.0
        assert (d / "model" / "config.json").exists() and not (d / "checkpoints").exists()

    logs.clear()
    run_experiment(cfg, log=logs.append)
    assert sum("done already, skipped" in line for line in logs) == 3

    changed = tiny_config(tmp_path, train={"epochs": 3, "batch_size": 8, "threads": 1})
    with pytest.raises(ConfigError, match="holds results of a different config"):
        run_experiment(changed, log=logs.append)


def _without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith("_seconds")}


@pytest.mark.slow
def test_arms_in_parallel_processes_match_the_sequential_run(tmp_path):
    arms = ["poisoned-ce", "poisoned-dece", "clean-ce"]
    parallel = tiny_config(tmp_path, arms=arms, jobs=2, output_dir=str(tmp_path / "parallel"))
    logs = []
    results = run_experiment(parallel, log=logs.append)
    assert any("running 3 arm(s) in 2 process(es) of 1 thread(s)" in line for line in logs)
    for arm in arms:  # the workers' lines reach the caller's log, each arm's in its order
        mine = [line for line in logs if line.startswith(f"[{arm}] ")]
        assert [line.split()[1] for line in mine[:1] + mine[-1:]] == ["training", "{\"bleu\":"], mine
    assert list(results) == arms
    sequential = tiny_config(tmp_path, arms=arms, output_dir=str(tmp_path / "sequential"))
    expected = run_experiment(sequential, log=logs.append)
    for arm in arms:
        assert _without_timings(results[arm]) == _without_timings(expected[arm])
        assert (read_records(tmp_path / "parallel" / "arms" / arm / "predictions.jsonl")
                == read_records(tmp_path / "sequential" / "arms" / arm / "predictions.jsonl"))
    # the process count is not part of an arm's fingerprint: a sequential rerun finds every arm done
    logs.clear()
    run_experiment(tiny_config(tmp_path, arms=arms, output_dir=str(tmp_path / "parallel")), log=logs.append)
    assert sum("done already, skipped" in line for line in logs) == 3


@pytest.mark.slow
def test_decoder_only_arm_and_cached_pretraining(tmp_path, capsys):
    cache = tmp_path / "cache"
    model = {**TINY_MODEL, "name": "gpt2-tiny", "max_source_length": 48}
    cfg = tiny_config(tmp_path, model=model, arms=["poisoned-gce"], dynamics=False,
                      train={"epochs": 1, "batch_size": 8, "threads": 1, "fused_head": True},
                      pretrain={"rows": 16, "epochs": 1, "batch_size": 8, "cache_dir": str(cache)})
    logs = []
    run_experiment(cfg, log=logs.append)
    assert any(line.startswith("pretraining gpt2-tiny on 16") for line in logs)
    cached = [p for p in cache.iterdir() if p.is_dir()]  # beside it: the lock processes take turns on
    assert len(cached) == 1 and (cached[0] / "config.json").exists()
    other = tiny_config(tmp_path, model=model, arms=["poisoned-ce"], dynamics=False, output_dir=str(tmp_path / "run2"),
                        pretrain={"rows": 16, "epochs": 1, "batch_size": 8, "cache_dir": str(cache)})
    logs.clear()
    run_experiment(other, log=logs.append)
    assert any("cached at" in line for line in logs)

    # `dece pretrain` finds the cached model, and builds another for a different recipe
    path = tmp_path / "other.toml"
    path.write_text(dump_config(other))
    assert main(["pretrain", str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith(cached[0].name)
    assert main(["pretrain", str(path), "--set", "pretrain.group_by_length=true"]) == 0
    built = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert built.name != cached[0].name and (built / "config.json").exists()
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2
    path.write_text(dump_config(tiny_config(tmp_path)))
    assert main(["pretrain", str(path)]) == 2
    assert "no [pretrain] table" in capsys.readouterr().err


def test_cli_run_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('arms = ["clean-ce"]\n[train]\nepochz = 3\n')
    assert main(["run", str(path)]) == 2
    assert "unknown key 'train.epochz'" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_scores_a_saved_model_as_its_arm_was_scored(tmp_path, capsys):
    cfg = tiny_config(tmp_path, arms=["poisoned-ce"], dynamics=False)
    results = run_experiment(cfg, log=lambda line: None)
    config_path = tmp_path / "tiny.toml"
    config_path.write_text(dump_config(cfg))
    model_dir = tmp_path / "run" / "arms" / "poisoned-ce" / "model"
    assert main(["evaluate", str(model_dir), str(config_path), "--output-dir", str(tmp_path / "elsewhere")]) == 0
    out = tmp_path / "elsewhere" / "evaluate" / "poisoned-ce"
    assert f"results: {out}" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    arm = {k: v for k, v in results["poisoned-ce"].items() if k not in ("fingerprint", "train_fingerprint", "train_seconds", "eval_seconds")}
    assert {k: v for k, v in metrics.items() if k != "model"} == json.loads(json.dumps(arm))
    assert metrics["model"] == str(model_dir)
    assert (read_records(out / "predictions.jsonl")
            == read_records(tmp_path / "run" / "arms" / "poisoned-ce" / "predictions.jsonl"))
    assert (out / "config.toml").exists()
    from dece.experiments.model_eval import evaluate_model  # an hf: name loads the same checkpoint

    again = evaluate_model(cfg, f"hf:{model_dir}", tmp_path / "hf", log=lambda line: None)
    assert {k: v for k, v in again.items() if k != "model"} == {k: v for k, v in metrics.items() if k != "model"}
    # behind an input defense: as an input-defense arm, the sources are rewritten before generation
    assert main(["evaluate", str(model_dir), str(config_path), "--output-dir", str(tmp_path / "elsewhere"),
                 "--defense", "onion", "--defense-param", "threshold=0.0"]) == 0
    assert json.loads((tmp_path / "elsewhere" / "evaluate" / "poisoned-ce" / "metrics.json").read_text()) == metrics
    out = tmp_path / "elsewhere" / "evaluate" / "poisoned-ce+onion"  # beside the undefended score, not over it
    defended = json.loads((out / "metrics.json").read_text())
    assert defended["defense"]["name"] == "onion" and defended["defense"]["params"]["threshold"] == 0.0
    preds = read_records(out / "predictions.jsonl")
    assert all("defended_src" in p for p in preds) and any(p["defended_src"] != p["src"] for p in preds)


def test_evaluate_refuses_what_is_not_a_model(tmp_path):
    cfg = tiny_config(tmp_path)
    from dece.experiments.model_eval import evaluate_model

    with pytest.raises(ConfigError, match="not a folder; give a saved model folder or an hf: checkpoint name"):
        evaluate_model(cfg, "t5-tiny", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: no config.json .*not a saved model folder"):
        evaluate_model(cfg, str(tmp_path / "empty"), tmp_path / "out")
    from dece.experiments.model_eval import input_defense_arm

    with pytest.raises(ConfigError, match="'spectral_signature' is a data defense; only input defenses"):
        input_defense_arm("spectral_signature")
    with pytest.raises(ConfigError, match="unknown defense 'onoin'"):
        input_defense_arm("onoin")


@pytest.mark.slow
def test_evaluate_a_lora_arm_rebuilds_its_base_and_loads_the_adapters(tmp_path):
    cfg = tiny_config(tmp_path, arms=["poisoned-ce"], dynamics=False, model={**TINY_MODEL, "lora": {"r": 2}})
    results = run_experiment(cfg, log=lambda line: None)
    model_dir = tmp_path / "run" / "arms" / "poisoned-ce" / "model"
    assert (model_dir / "adapter_config.json").exists()
    from dece.experiments.model_eval import evaluate_model

    metrics = evaluate_model(cfg, str(model_dir), tmp_path / "eval", log=lambda line: None)
    arm = {k: v for k, v in results["poisoned-ce"].items() if k not in ("fingerprint", "train_fingerprint", "train_seconds", "eval_seconds")}
    assert {k: v for k, v in metrics.items() if k != "model"} == json.loads(json.dumps(arm))


def test_two_runs_needing_one_base_at_once_pretrain_it_once(tmp_path):
    import threading

    from dece.experiments.base_model import pretrained_model

    cfg = tiny_config(tmp_path, pretrain={"rows": 16, "epochs": 1, "batch_size": 8, "cache_dir": str(tmp_path / "cache")})
    logs: list[list[str]] = [[], []]
    paths = [None, None]

    def need(i):
        paths[i] = pretrained_model(cfg, log=logs[i].append)

    threads = [threading.Thread(target=need, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert paths[0] == paths[1] and (paths[0] / "config.json").exists()
    trained = [any(line.startswith("pretraining") for line in log) for log in logs]
    assert sorted(trained) == [False, True]  # one trained; the other found it cached
    waited = logs[trained.index(False)]
    assert any("cached at" in line for line in waited)
