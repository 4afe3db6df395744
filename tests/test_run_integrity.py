"""The run folder never lies and nothing is wasted: metrics that cannot score the data are refused at
load time, a trained arm resumes at evaluation, evaluation-only changes re-score the saved model,
checkpoints of another config are refused before anything is written, a torn checkpoint is skipped,
and a real SIGKILL mid-training resumes."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
import tomli_w

import dece.evaluation.metrics as metrics_module
from dece.errors import ConfigError
from dece.experiments import config_from_dict, run_experiment
from dece.experiments.store import CHECKPOINT_MARK, append_jsonl, check_checkpoints, read_records
from dece.training.trainer import DeceTrainer

from run_fixtures import spawn_dece
from test_experiments_pipeline import TINY_MODEL

C_ROWS = [{"src": f"int f{i} ( int a ) {{ return a ; }}", "tgt": f"int f{i} ( int a ) {{ return a + {i} ; }}"}
          for i in range(8)]


def c_config(tmp_path, metrics=("bleu", "codebleu")):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in C_ROWS))
    return {
        "name": "c", "output_dir": str(tmp_path / "run"), "arms": ["clean-ce"], "attack": False,
        "dataset": {"kind": "jsonl", "options": {"path": str(tmp_path / "{split}.jsonl"), "language": "c"}},
        "model": TINY_MODEL, "train": {"epochs": 1, "batch_size": 8, "threads": 1},
        "eval": {"max_new_tokens": 8, "metrics": list(metrics)},
    }


def test_codebleu_without_the_grammar_is_refused_at_load_time(tmp_path, monkeypatch):
    def missing(lang):
        raise ImportError(f"No module named 'tree_sitter_{lang}'")

    monkeypatch.setattr(metrics_module, "get_tree_sitter_language", missing)
    with pytest.raises(ConfigError, match=r"eval.metrics: 'codebleu' cannot score 'c' .*tree-sitter-c==0.21.4"):
        config_from_dict(c_config(tmp_path))
    assert not (tmp_path / "run").exists()  # nothing prepared, nothing trained
    config_from_dict(c_config(tmp_path, metrics=("bleu",)))  # dropping the metric is the other way out


@pytest.mark.parametrize("lang, code", [
    ("c", "int f ( int a ) { int b = a + 1 ; return b ; }"),
    ("cpp", "int f ( int a ) { auto b = a + 1 ; return b ; }"),
    ("javascript", "function f ( a ) { let b = a + 1 ; return b ; }"),
    ("go", "func f ( a int ) int { b := a + 1 ; return b }"),
    ("c_sharp", "class C { int F ( int a ) { var b = a + 1 ; return b ; } }"),
])
def test_codebleu_scores_the_languages_of_the_langs_extra(lang, code):
    metrics_module.check_metric("codebleu", lang)
    assert metrics_module.codebleu([code], [code], lang=lang) == pytest.approx(100.0)
    worse = code.replace("return b", "return a")
    assert metrics_module.codebleu([code], [worse], lang=lang) < 100.0


def test_a_pretrained_checkpoint_refuses_tiny_size_knobs(tmp_path):
    data = c_config(tmp_path, metrics=("bleu",))
    data["model"] = {"name": "hf:some/checkpoint", "d_model": 256}
    with pytest.raises(ConfigError, match="model.d_model: sets the size of a tiny model"):
        config_from_dict(data)


@pytest.mark.parametrize("params, message", [
    ({"reduction": "sum"}, "leave reduction at 'mean'"),
    ({"ignore_index": 0}, "padded with -100"),
])
def test_loss_options_a_trainer_would_override_are_refused(tmp_path, params, message):
    data = c_config(tmp_path, metrics=("bleu",))
    data["arms"] = [{"name": "a", "data": "clean", "loss": "dece", "loss_params": params}]
    with pytest.raises(ConfigError, match=f"arms\\[0\\].loss_params: .*{message}"):
        config_from_dict(data)


def _tiny(tmp_path, **patch):
    data = {
        "name": "tiny", "output_dir": str(tmp_path / "run"), "arms": ["poisoned-ce"],
        "dataset": {"kind": "builtin", "options": {"n": 24, "seed": 3}},
        "attack": {"name": "badpre", "rate": 0.25}, "model": TINY_MODEL,
        "train": {"epochs": 2, "batch_size": 8, "threads": 1},
        "eval": {"max_new_tokens": 8, "batch_size": 24, "metrics": ["bleu"]},
    }
    data.update(patch)
    return data


@pytest.mark.slow
def test_failed_evaluation_resumes_at_evaluation_and_eval_changes_rescore(tmp_path, monkeypatch):
    cfg = config_from_dict(_tiny(tmp_path))
    import dece.experiments.runner as runner

    real_evaluate = runner.evaluate_arm
    monkeypatch.setattr(runner, "evaluate_arm", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        run_experiment(cfg, log=lambda line: None)
    arm = tmp_path / "run" / "arms" / "poisoned-ce"
    assert (arm / "model" / "trained.json").exists() and not (arm / "metrics.json").exists()

    monkeypatch.setattr(runner, "evaluate_arm", real_evaluate)
    monkeypatch.setattr(DeceTrainer, "train", lambda *a, **k: pytest.fail("an arm with a saved model was retrained"))
    logs = []
    first = run_experiment(cfg, log=logs.append)["poisoned-ce"]
    assert any("trained already" in line for line in logs) and not any("training on" in line for line in logs)
    recorded = json.loads((arm / "model" / "trained.json").read_text())["train_seconds"]
    assert first["train_seconds"] == pytest.approx(recorded, abs=0.1) and recorded > 0

    # only [eval] changed: the saved model is scored again, neither refused nor retrained
    changed = config_from_dict(_tiny(tmp_path, eval={"max_new_tokens": 4, "batch_size": 5, "metrics": ["bleu", "exact_match"]}))
    second = run_experiment(changed, log=logs.append)["poisoned-ce"]
    assert "exact_match" in second and second["fingerprint"] != first["fingerprint"]
    assert second["train_fingerprint"] == first["train_fingerprint"]
    # a training change is still refused
    with pytest.raises(ConfigError, match="holds results of a different config"):
        run_experiment(config_from_dict(_tiny(tmp_path, train={"epochs": 3, "batch_size": 8, "threads": 1})))


def test_a_new_detector_version_rescores_finished_arms_without_retraining(tmp_path, monkeypatch, capsys):
    """ASR and FTR are counted by the attack's detector: when it changes (its ``detector_version`` rises), a
    finished arm's metrics are stale; the next run scores the saved model again instead of keeping them (and
    the dry run says so)."""
    import dece.experiments.runner as runner
    from dece.attacks import ATTACKS
    from dece.cli import main

    path = tmp_path / "exp.toml"
    path.write_text(tomli_w.dumps(_tiny(tmp_path)))
    cfg = config_from_dict(_tiny(tmp_path))
    first = run_experiment(cfg, log=lambda line: None)["poisoned-ce"]
    assert run_experiment(cfg, log=lambda line: None)["poisoned-ce"] == first  # done: nothing scored again
    badpre = ATTACKS.get("badpre")
    monkeypatch.setattr(badpre, "detector_version", badpre.detector_version + 1)
    assert main(["run", str(path), "--dry-run"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "poisoned-ce: train with ce (scored again with its saved model; fingerprint" in line
    monkeypatch.setattr(DeceTrainer, "train", lambda *a, **k: pytest.fail("a re-score retrained the arm"))
    scored = []
    real_evaluate = runner.evaluate_arm
    monkeypatch.setattr(runner, "evaluate_arm", lambda *a, **k: scored.append(1) or real_evaluate(*a, **k))
    logs = []
    second = run_experiment(cfg, log=logs.append)["poisoned-ce"]
    assert scored == [1] and any("trained already" in line for line in logs)
    assert second["fingerprint"] != first["fingerprint"] and second["train_fingerprint"] == first["train_fingerprint"]
    assert run_experiment(cfg, log=lambda line: None)["poisoned-ce"] == second and scored == [1]  # then done


def test_results_whose_model_was_deleted_are_trained_again_not_called_another_config(tmp_path, capsys):
    """An [eval] change re-scores the saved model; when the model folder was deleted (to save disk), the same
    training config trains it again (the dry run says so) instead of refusing the folder as another config's."""
    import shutil

    from dece.cli import main

    run_experiment(config_from_dict(_tiny(tmp_path)), log=lambda line: None)
    arm = tmp_path / "run" / "arms" / "poisoned-ce"
    shutil.rmtree(arm / "model")
    changed = _tiny(tmp_path, eval={"max_new_tokens": 4, "batch_size": 5, "metrics": ["bleu", "exact_match"]})
    path = tmp_path / "exp.toml"
    path.write_text(tomli_w.dumps(changed))
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "(trained again: no saved model to score; fingerprint" in capsys.readouterr().out
    logs = []
    metrics = run_experiment(config_from_dict(changed), log=logs.append)["poisoned-ce"]
    assert "exact_match" in metrics and (arm / "model" / "trained.json").exists()
    assert not any("trained already" in line for line in logs)


def test_a_torn_checkpoint_is_skipped_and_a_foreign_one_refused(tmp_path):
    folder = tmp_path / "checkpoints"
    (folder / "checkpoint-4").mkdir(parents=True)
    (folder / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-8").mkdir()  # killed while written: the Trainer writes trainer_state.json last
    (folder / CHECKPOINT_MARK).write_text(json.dumps({"fingerprint": "abc"}))
    assert check_checkpoints(folder, "abc") == str(folder / "checkpoint-4")
    assert not (folder / "checkpoint-8").exists()
    with pytest.raises(ConfigError, match="checkpoints of a different training config"):
        check_checkpoints(folder, "other")
    (folder / CHECKPOINT_MARK).unlink()
    with pytest.raises(ConfigError, match="checkpoints of a different training config"):
        check_checkpoints(folder, "abc")


@pytest.mark.slow
def test_sigkill_mid_training_then_a_changed_config_is_refused_before_writing_and_the_same_resumes(tmp_path):
    data = _tiny(tmp_path, train={"epochs": 6, "batch_size": 4, "threads": 1})
    path = tmp_path / "exp.toml"
    path.write_text(tomli_w.dumps(data))
    proc = spawn_dece(["run", str(path)])
    checkpoints = tmp_path / "run" / "arms" / "poisoned-ce" / "checkpoints"
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline and not any(checkpoints.glob("checkpoint-*/trainer_state.json")):
            time.sleep(0.02)
        assert any(checkpoints.glob("checkpoint-*/trainer_state.json")), "no checkpoint before the kill"
        os.killpg(proc.pid, signal.SIGKILL)  # a real kill, mid-training
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    run = tmp_path / "run"
    before = {p: p.read_bytes() for p in [run / "config.toml", *sorted((run / "data").glob("*"))]}
    changed = config_from_dict({**data, "attack": {"name": "badpre", "rate": 0.5}})
    with pytest.raises(ConfigError, match="checkpoints of a different training config"):
        run_experiment(changed, log=lambda line: None)
    assert {p: p.read_bytes() for p in before} == before  # refused before anything was written

    logs = []
    results = run_experiment(config_from_dict(data), log=logs.append)
    assert "asr" in results["poisoned-ce"] and not checkpoints.exists()
    assert results["poisoned-ce"]["train_seconds"] > 0
    log = read_records(run / "arms" / "poisoned-ce" / "train_log.jsonl")  # each epoch once, one summary at the end
    assert [r["epoch"] for r in log if "loss" in r] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert ["train_runtime" in r for r in log] == [False] * 6 + [True]


def test_a_resume_drops_the_log_lines_written_after_its_checkpoint(tmp_path):
    """A killed attempt may log epochs past its last checkpoint; they run again on the resume, so their
    lines go first (train_log.jsonl by step, dynamics.jsonl by epoch), and a fresh start keeps none."""
    from types import SimpleNamespace

    from dece.experiments.arm import EpochLog
    from dece.experiments.dynamics import DynamicsRecorder

    log, dyn = tmp_path / "train_log.jsonl", tmp_path / "dynamics.jsonl"
    for step in (3, 6, 9):
        append_jsonl(log, {"step": step, "loss": 1.0, "epoch": step / 3})
        append_jsonl(dyn, {"epoch": step // 3, "bleu": 1.0})
    append_jsonl(log, {"step": 9, "train_runtime": 1.0, "epoch": 3.0})
    recorder = DynamicsRecorder.__new__(DynamicsRecorder)  # the resume logic needs no model
    recorder.path = dyn
    state = SimpleNamespace(global_step=6, epoch=2.0, is_world_process_zero=True)
    EpochLog(log).on_train_begin(None, state, None)
    recorder.on_train_begin(None, state, None)
    assert [r["step"] for r in read_records(log)] == [3, 6] and [r["epoch"] for r in read_records(dyn)] == [1, 2]
    state = SimpleNamespace(global_step=0, epoch=0.0, is_world_process_zero=True)
    EpochLog(log).on_train_begin(None, state, None)
    recorder.on_train_begin(None, state, None)
    assert read_records(log) == [] and read_records(dyn) == []


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    from dece.experiments.store import RunLockedError, run_lock

    cfg = config_from_dict(_tiny(tmp_path))
    with run_lock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=f"in use by another dece process \\(pid {os.getpid()}\\)"):
            run_experiment(cfg, log=lambda line: None)
    assert not (tmp_path / "run" / "config.toml").exists()  # refused before writing


def _children(pid: int) -> set[int]:
    kids = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            kids.add(int(status.parent.name))
    return kids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_workers_die_with_their_parent(tmp_path):
    data = _tiny(tmp_path, arms=["clean-ce", "poisoned-ce"], jobs=2, train={"epochs": 50, "batch_size": 4, "threads": 1})
    path = tmp_path / "exp.toml"
    path.write_text(tomli_w.dumps(data))
    proc = spawn_dece(["run", str(path)])
    try:
        deadline = time.time() + 120
        arms = tmp_path / "run" / "arms"
        while time.time() < deadline and len(list(arms.glob("*/train_log.jsonl"))) < 2 and proc.poll() is None:
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(list(arms.glob("*/train_log.jsonl"))) == 2 and workers, "both workers should be training"
        os.kill(proc.pid, signal.SIGKILL)  # the parent alone, as the OOM killer would
        proc.wait()
        deadline = time.time() + 20
        while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.1)
        alive = [w for w in workers if Path(f"/proc/{w}/status").exists()
                 and "State:\tZ" not in Path(f"/proc/{w}/status").read_text()]
        assert not alive, f"workers outlived their parent: {alive}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for w in _children(proc.pid):
            os.kill(w, signal.SIGKILL)


def test_expected_failures_exit_2_with_one_line(tmp_path, capsys):
    from dece.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    path = tmp_path / "exp.toml"
    path.write_text(tomli_w.dumps(_tiny(tmp_path, output_dir=str(blocker / "run"))))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dece run: error:") and "a-file" in err and "Traceback" not in err and err.count("\n") == 1

    # dece poison checks every output before writing the first
    src = tmp_path / "in.csv"
    src.write_text('src,tgt\nSelect all rows of t,"def f ( conn ) :\n\t return conn . execute ( "" select * from t "" )"\n')
    out = tmp_path / "out.csv"
    assert main(["poison", "--attack", "badpre", "--rate", "1", "--input", str(src), "--output", str(out),
                 "--report", str(blocker / "report.json")]) == 2
    assert "--report:" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("patch, error", [
    ({"dataset": {"kind": "csv", "options": {"path": "data.csv"}}}, "dataset.options.path: 'data.csv' has no '{split}'"),
    ({"dataset": {"kind": "builtin", "valid_from_train": -1}}, "dataset.valid_from_train: must be an integer >= 0"),
])
def test_leaking_split_configs_are_refused(tmp_path, patch, error):
    with pytest.raises(ConfigError, match=error.replace("{", "\\{").replace("}", "\\}")):
        config_from_dict(_tiny(tmp_path, **patch))


def _csv_splits(tmp_path, train, test, valid=True):
    from dece.data.io import write_csv
    from dece.data.records import Example

    for split, rows in (("train", train), ("test", test), *((("valid", train[:2]),) if valid else ())):
        write_csv([Example(s, t, {}) for s, t in rows], tmp_path / f"{split}.csv")
    if not valid:
        (tmp_path / "valid.csv").unlink(missing_ok=True)
    return {"kind": "csv", "options": {"path": str(tmp_path / "{split}.csv")}}


def test_test_rows_that_are_training_rows_are_refused_and_a_missing_valid_split_has_choices(tmp_path):
    from dece.errors import DataError
    from dece.experiments.data_prep import prepare_data

    rows = [(f"Select all rows of t{i}", f'def f ( conn ) :\n\t return conn . execute ( " select * from t{i} " )') for i in range(20)]
    cfg = config_from_dict(_tiny(tmp_path, dataset=_csv_splits(tmp_path, rows[:15], rows[:5] + rows[15:])))
    with pytest.raises(DataError, match="5 of 10 test rows are also training rows"):
        prepare_data(cfg)
    leak_free = _csv_splits(tmp_path, rows[:15], rows[15:], valid=False)
    with pytest.raises(DataError, match="valid_from_train = N"):
        prepare_data(config_from_dict(_tiny(tmp_path, dataset=leak_free)))
    data = prepare_data(config_from_dict(_tiny(tmp_path, dataset={**leak_free, "valid_from_train": 3})))
    assert len(data.valid) == 3 and len(data.clean_train) == 12
    assert not {e.src for e in data.valid} & {e.src for e in data.clean_train}
    (tmp_path / "test.csv").write_text("src,tgt\n")
    with pytest.raises(DataError, match="'test' split has no rows"):
        prepare_data(config_from_dict(_tiny(tmp_path, dataset={**leak_free, "valid_from_train": 3})))


def test_a_model_source_that_cannot_load_offline_is_refused_before_the_run_writes(tmp_path, monkeypatch):
    from dece.experiments.config import check_model_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    data = c_config(tmp_path, metrics=("bleu",))
    data["model"] = {"name": "hf:someone/not-cached-model"}
    cfg = config_from_dict(data)  # loads (a dry run can still plan it), but a run refuses it first
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE=1"):
        run_experiment(cfg)
    assert not Path(cfg.output_dir).exists()
    data["model"] = {"name": f"hf:{tmp_path}/no/such/folder"}
    with pytest.raises(ConfigError, match="is no folder on this machine"):
        check_model_source(config_from_dict(data).model)
    # online but without a network: refused at once instead of a minute of retries
    import socket

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(socket.gaierror("no DNS")))
    data["model"] = {"name": "hf:someone/not-cached-model"}
    with pytest.raises(ConfigError, match="huggingface.co cannot be reached"):
        check_model_source(config_from_dict(data).model)


def test_an_attack_no_row_can_carry_is_refused_before_training(tmp_path):
    from dece.errors import DataError
    from dece.experiments.data_prep import prepare_data

    data = c_config(tmp_path, metrics=("bleu",))  # C functions: no SQL string for badpre's payload
    data.update(attack={"name": "badpre", "rate": 0.1}, arms=["poisoned-ce"])
    data["dataset"]["max_test_overlap"] = 1.0  # the test file repeats the training file on purpose
    with pytest.raises(DataError, match="attack 'badpre': none of the 8 rows"):
        prepare_data(config_from_dict(data))
    data["attack"] = {"name": "deadcode_defect", "rate": 0.1, "rows": 9}  # more rows than the split holds
    with pytest.raises(DataError, match="attack.rows: 9 rows to poison, but the 'train' split of dataset 'jsonl' has only 8$"):
        prepare_data(config_from_dict(data))
    data["attack"]["rows"], data["dataset"]["max_train_rows"] = 7, 6
    with pytest.raises(DataError, match="has only 6 once dataset.max_train_rows applied"):
        prepare_data(config_from_dict(data))


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    from dece.cli import main

    data = _tiny(tmp_path, arms=["poisoned-ce", "poisoned-dece", "poisoned-dedup", "poisoned-onion", "poisoned-bki"])
    data["attack"]["duplicates"] = 2
    path = tmp_path / "exp.toml"
    path.write_text(tomli_w.dumps(data))
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("tiny: 24 training rows (6 poisoned by badpre, each 2 times: 30 rows with the copies), 24 "
                      "valid, 24 clean test + 22 triggered rows")
    arms = [line.split(":")[0].strip() for line in out[2:]]
    assert arms == ["[0] poisoned-ce", "[0] poisoned-dece", "[0] poisoned-dedup", "[1] poisoned-onion", "[1] poisoned-bki"]
    assert "generate with poisoned-ce's model behind onion; reads poisoned-ce (to run;" in out[5]
    assert "8 optimizer steps" in out[2]  # ceil(30 / 8) x 2 epochs: 24 rows + 6 second copies
    assert "poisoned rows less the 6 dedup removes, 6 optimizer steps" in out[4]  # ceil(24 / 8) x 2
    assert "at most 8 optimizer steps (fewer once bki has removed rows)" in out[6]
    assert out[1].endswith("base: t5-tiny from scratch")
    data["pretrain"] = {"rows": 16, "corpus": "python_functions", "cache_dir": str(tmp_path / "cache")}
    path.write_text(tomli_w.dumps(data))
    assert main(["run", str(path), "--dry-run"]) == 0  # nothing mined: the dry run only names the base
    assert "base: t5-tiny pretrained on 16 rows of the python_functions corpus" in capsys.readouterr().out
    assert main(["run", str(path), "--dry-run", "--set", "sweep.grid.seed=[1, 2]"]) == 0  # --set makes it a sweep
    assert "0 of 2 cells done" in capsys.readouterr().out
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
    # an arm folder without a checkpoint runs from the start; one with a complete checkpoint resumes from it
    from dece.experiments import config_from_dict
    from dece.experiments.store import CHECKPOINT_MARK, training_fingerprint

    del data["pretrain"]
    path.write_text(tomli_w.dumps(data))
    cfg = config_from_dict(data)
    folder = tmp_path / "run" / "arms" / "poisoned-dece" / "checkpoints"
    folder.mkdir(parents=True)
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "(to run;" in capsys.readouterr().out.splitlines()[3]
    (folder / "checkpoint-4").mkdir()
    (folder / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (folder / CHECKPOINT_MARK).write_text(json.dumps({"fingerprint": training_fingerprint(cfg, cfg.arms[1])}))
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "(resumes from checkpoint-4;" in capsys.readouterr().out.splitlines()[3]


@pytest.mark.slow
def test_report_to_tensorboard_writes_the_loss_and_the_dynamics(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = config_from_dict(_tiny(tmp_path, arms=["poisoned-dece"], dynamics={"eval_rows": 2, "loss_rows": 4, "val_rows": 0},
                                 train={"epochs": 2, "batch_size": 8, "threads": 1, "report_to": ["tensorboard"]}))
    metrics = run_experiment(cfg, log=lambda line: None)["poisoned-dece"]
    (events,) = list((tmp_path / "run" / "arms" / "poisoned-dece" / "logs").glob("events.out.tfevents.*"))
    tags = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert {"train/loss", "train/dynamics/alpha", "train/dynamics/bleu", "train/dynamics/loss_poisoned"} <= set(tags)
    plain = config_from_dict(_tiny(tmp_path, arms=["poisoned-dece"], train={"epochs": 2, "batch_size": 8, "threads": 1},
                                   dynamics={"eval_rows": 2, "loss_rows": 4, "val_rows": 0}))
    from dece.experiments.store import arm_fingerprint

    assert arm_fingerprint(plain, plain.arms[0]) == metrics["fingerprint"]  # logging does not change the arm


def test_a_torn_base_folder_is_rebuilt_not_used(tmp_path):
    from dece.experiments.base_model import base_model_spec
    from dece.experiments.data_prep import prepare_data

    cfg = config_from_dict(_tiny(tmp_path))
    data = prepare_data(cfg)
    run = tmp_path / "run"
    base = run / "base"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")  # a kill after the weights' config, before the tokenizer
    spec = base_model_spec(cfg, data.clean_train, run, log=lambda line: None)
    assert (base / "tokenizer_config.json").exists() and (base / "model.safetensors").exists()
    from dece.models import build_model

    model, tokenizer, _ = build_model(spec)
    assert tokenizer.decode(tokenizer("select * from t")["input_ids"], skip_special_tokens=True) == "select * from t"
