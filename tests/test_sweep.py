"""Sweeps: grid expansion, cell names and errors; a real SIGKILL mid-sweep, then a resume that does not
recompute finished cells and completes the rest; `dece run` / `dece sweep --list` on a sweep config."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
import tomli_w

from dece.cli import main
from dece.errors import ConfigError
from dece.experiments.store import read_records
from dece.experiments.sweep import cell_done, cell_name, expand_grid, name_hides_values, run_sweep
from dece.reporting.markdown import write_results_markdown

from run_fixtures import spawn_dece
from test_experiments_pipeline import TINY_MODEL


def base(tmp_path, **patch):
    data = {
        "name": "tiny-sweep",
        "output_dir": str(tmp_path / "sweep"),
        "arms": ["poisoned-ce"],
        "dataset": {"kind": "builtin", "options": {"n": 16, "seed": 3}},
        "attack": {"name": "badpre", "rate": 0.25},
        "model": TINY_MODEL,
        "train": {"epochs": 1, "batch_size": 8, "threads": 1},
        "eval": {"max_new_tokens": 8, "batch_size": 16, "metrics": ["bleu"]},
        "sweep": {"grid": {"attack.rate": [0.25, 0.5], "seed": [1, 2]}},
    }
    data.update(patch)
    return data


def test_grid_expands_in_order_with_overrides_applied(tmp_path):
    cells = expand_grid(base(tmp_path))
    assert [c.name for c in cells] == ["attack.rate=0.25__seed=1", "attack.rate=0.25__seed=2",
                                       "attack.rate=0.5__seed=1", "attack.rate=0.5__seed=2"]
    c = cells[2]
    assert c.config.attack.rate == 0.5 and c.config.seed == 1 and c.overrides == {"attack.rate": 0.5, "seed": 1}
    assert Path(c.config.output_dir) == tmp_path / "sweep" / "cells" / c.name
    nested = expand_grid(base(tmp_path, sweep={"grid": {"attack": {"name": ["badpre", "ripple"]},
                                                        "arms": ["poisoned-ce", ["clean-ce", {"name": "d", "loss": "dece"}]]}}))
    assert [c.name for c in nested] == ["attack.name=badpre__arms=poisoned-ce", "attack.name=badpre__arms=clean-ce+d",
                                        "attack.name=ripple__arms=poisoned-ce", "attack.name=ripple__arms=clean-ce+d"]
    assert [a.name for a in nested[1].config.arms] == ["clean-ce", "d"]
    assert cell_name({"model.name": "hf:/some path/x"}) == "model.name=hf_some_path_x"
    assert len(cell_name({"k": "x" * 500})) <= 120
    assert name_hides_values({"k": "x" * 500}) and name_hides_values({"attack.params": {"position": "start"}})
    assert not name_hides_values({"arms": ["clean-ce", {"name": "d", "loss": "dece"}], "seed": 1})


def test_a_cell_that_names_another_attack_drops_the_inherited_parameters(tmp_path):
    """A grid value of attack.name is a --set: BadPre's word means nothing to RIPPLe (the cell would fail to
    load), unless the same cell gives the parameter itself."""
    data = base(tmp_path, attack={"name": "badpre", "rate": 0.25, "params": {"word": "zzz"}},
                sweep={"grid": {"attack.name": ["badpre", "ripple"]}})
    same, other = expand_grid(data)
    assert same.config.attack.params == {"word": "zzz"} and other.config.attack.params == {}
    kept = expand_grid(base(tmp_path, attack={"name": "badpre", "rate": 0.25, "params": {"word": "zzz"}},
                            sweep={"grid": {"attack.params.count": [2], "attack.name": ["ripple"]}}))
    assert kept[0].config.attack.params == {"count": 2}


def test_list_shows_the_values_a_cut_cell_name_hides(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(base(tmp_path, sweep={"grid": {"attack.params": [{"position": "start"}]}})))
    assert main(["sweep", str(path), "--list"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("pending  attack.params=") and line.endswith('{"attack.params": {"position": "start"}}')


def test_a_file_where_a_cell_folder_belongs_is_named_by_list_and_run(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(base(tmp_path, sweep={"grid": {"seed": [1, 2]}})))
    from dece.experiments.config import read_config_data

    (cell,) = [c for c in expand_grid(read_config_data(path)) if c.config.seed == 1]
    cell.dir.parent.mkdir(parents=True)
    cell.dir.write_text("not a folder")
    assert main(["sweep", str(path), "--list"]) == 1
    assert f"CONFLICT  seed=1: sweep cell seed=1: {cell.dir} is a file where the cell's folder belongs" in capsys.readouterr().out
    assert main(["sweep", str(path)]) == 2  # refused before any cell runs
    assert "is a file where the cell's folder belongs; move it away" in capsys.readouterr().err
    assert cell.dir.read_text() == "not a folder" and not (cell.dir.parent / "seed=2").exists()


@pytest.mark.parametrize("sweep, message", [
    ({"grid": {}}, "at least one key"),
    ({"grid": {"seed": []}}, "non-empty list"),
    ({"grid": {"seed": 3}}, "non-empty list"),
    ({"grid": {"output_dir": ["a", "b"]}}, "cannot be swept"),
    ({"grid": {"seed": [1]}, "grdi": 1}, "unknown key 'sweep.grdi'"),
    ({"grid": {"attack.rate": [0.1, 7]}}, r"sweep cell attack.rate=7: attack.rate: must lie in \(0, 1\]"),
])
def test_grid_errors_name_the_key(tmp_path, sweep, message):
    with pytest.raises(ConfigError, match=message):
        expand_grid(base(tmp_path, sweep=sweep))


@pytest.mark.slow
def test_sweep_killed_mid_way_resumes_without_recomputing(tmp_path):
    data = base(tmp_path, train={"epochs": 2, "batch_size": 8, "threads": 1})
    path = tmp_path / "sweep.toml"
    path.write_text(tomli_w.dumps(data))
    cells = expand_grid(data)
    proc = spawn_dece(["sweep", str(path)])
    try:
        deadline = time.time() + 120
        first = cells[0].dir / "results.json"
        while not first.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert first.exists(), "the first cell never finished"
        os.killpg(proc.pid, signal.SIGKILL)  # a real kill, mid-sweep
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done_at_kill = {c.name: (c.dir / "arms" / "poisoned-ce" / "metrics.json").stat().st_mtime_ns
                    for c in cells if cell_done(c)}
    assert cells[0].name in done_at_kill and len(done_at_kill) < len(cells), "the kill must land mid-sweep"
    events_before = len(read_records(tmp_path / "sweep" / "sweep.jsonl"))

    logs = []
    status = run_sweep(data, log=logs.append, on_done=write_results_markdown)
    assert all(s["done"] for s in status)
    for name, mtime in done_at_kill.items():  # finished cells were not recomputed
        assert (tmp_path / "sweep" / "cells" / name / "arms" / "poisoned-ce" / "metrics.json").stat().st_mtime_ns == mtime
        assert f"{name}] done already, skipped" in "\n".join(logs)
    started_again = [e["cell"] for e in read_records(tmp_path / "sweep" / "sweep.jsonl")[events_before:] if e["event"] == "started"]
    assert sorted(started_again) == sorted(c.name for c in cells if c.name not in done_at_kill)
    saved = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [c["done"] for c in saved["cells"]] == [True] * 4
    table = (tmp_path / "sweep" / "results.md").read_text()
    assert "| arm | badpre BLEU | badpre ASR |" in table and "### attack.rate = 0.5" in table


@pytest.mark.slow
def test_cli_run_expands_a_sweep_and_list_reports_status(tmp_path, capsys):
    data = base(tmp_path, sweep={"grid": {"seed": [1, 2]}}, attack={"name": "badpre", "rate": 0.25, "duplicates": 2},
                dynamics={"eval_rows": 2, "loss_rows": 4, "val_rows": 4, "row_losses": True})
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data))
    assert main(["sweep", str(path), "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("0 of 2 cells done") and [line.split() for line in out[1:]] == [["pending", "seed=1"], ["pending", "seed=2"]]
    assert main(["run", str(path), "--set", "train.epochs=1"]) == 0
    assert main(["sweep", str(path), "--list"]) == 0
    assert capsys.readouterr().out.split()[-4:] == ["done", "seed=1", "done", "seed=2"]
    # a real sweep reports and audits
    assert main(["report", str(tmp_path / "sweep")]) == 0
    md = (tmp_path / "sweep" / "report" / "report.md").read_text()
    assert "### all cells" in md and "![seed=1 quality](seed=1-quality.png)" in md
    assert main(["audit", str(tmp_path / "sweep" / "cells" / "seed=1")]) == 0
    assert (tmp_path / "sweep" / "cells" / "seed=1" / "audit" / "poisoned-ce.csv").exists()
    # attack.duplicates: each poisoned row twice in training; the payload loss is measured once per row
    cell = tmp_path / "sweep" / "cells" / "seed=1"
    report = json.loads((cell / "data" / "poison_report.json").read_text())
    assert report["duplicates"] == 2 and len(report["ids"]) == 2 * report["n_poisoned"] > 0
    train = read_records(cell / "data" / "train.poisoned.jsonl")
    assert len(train) == report["n_rows"] + report["n_poisoned"]
    record = json.loads((cell / "arms" / "poisoned-ce" / "dynamics.jsonl").read_text().splitlines()[-1])
    assert record["loss_poisoned"] is not None and len(record["row_losses"]) == len(train)
    copies = [i for i, r in enumerate(train) if "#dup" in r["meta"]["id"]]
    assert copies and all(record["row_losses"][i] == record["row_losses"][i - 1] for i in copies)
    capsys.readouterr()
    # the base config changed in place: refused before anything runs; --list still lists, naming the conflict
    assert main(["sweep", str(path), "--set", "train.epochs=2"]) == 2
    assert "holds results of a different config" in capsys.readouterr().err
    assert main(["sweep", str(path), "--set", "train.epochs=2", "--list"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "2 hold results of another config" in out[0]
    assert all(line.startswith("CONFLICT  seed=") and "holds results of a different config" in line for line in out[1:])
    metrics = tmp_path / "sweep" / "cells" / "seed=2" / "arms" / "poisoned-ce" / "metrics.json"
    for text, message in (("not json", "not readable JSON"), ("[]", "holds no results object")):
        metrics.write_text(text)  # damaged by hand: named, listed, never a traceback
        assert main(["sweep", str(path), "--list"]) == 1
        assert f"CONFLICT  seed=2: {metrics}: {message}" in capsys.readouterr().out
        assert main(["sweep", str(path)]) == 2 and f"{metrics}: {message}" in capsys.readouterr().err


def _started(sweep: Path) -> list[dict]:
    return [e for e in map(json.loads, (sweep / "sweep.jsonl").read_text().splitlines()) if e["event"] == "started"]


def test_a_waiting_worker_takes_over_the_cell_another_worker_held(tmp_path):
    import threading

    from dece.experiments.store import run_lock

    data = base(tmp_path, sweep={"grid": {"seed": [1, 2]}})
    cells = expand_grid(data)
    held, release = threading.Event(), threading.Event()

    def other_worker():  # holds cell 1 as a worker would, then goes away without finishing it
        with run_lock(cells[0].dir):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_worker)
    thread.start()
    held.wait(10)
    logs = []
    timer = threading.Timer(1.0, release.set)
    timer.start()
    status = run_sweep(data, log=logs.append, wait=0.2)
    thread.join()
    assert all(s["done"] for s in status)
    assert any("waiting: " in line and "in use by another dece process" in line for line in logs)
    assert sorted(e["cell"] for e in _started(tmp_path / "sweep")) == ["seed=1", "seed=2"]  # each run once


@pytest.mark.slow
def test_local_submitit_workers_share_a_sweep_and_run_each_cell_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(base(tmp_path, sweep={"grid": {"seed": [1, 2]}})))
    assert main(["sweep", str(path), "--workers", "5", "--executor", "local", "--param", "timeout_min=10",
                 "--poll", "1"]) == 0
    out = capsys.readouterr().out  # no more workers than cells
    assert out.startswith("--workers 5: 2 cells, so 2 worker(s)\nsubmitted 2 worker(s) (local)")
    assert (tmp_path / "sweep" / "submitit").is_dir()
    started = _started(tmp_path / "sweep")
    assert sorted(e["cell"] for e in started) == ["seed=1", "seed=2"]  # no cell twice
    assert (tmp_path / "sweep" / "results.md").exists()
    assert main(["sweep", str(path), "--workers", "2", "--executor", "local", "--param", "no_such_param=1"]) == 2
    assert "--param" in capsys.readouterr().err


def test_submitit_parameters_are_checked_before_anything_runs(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(base(tmp_path)))
    assert main(["sweep", str(path), "--param", "timeout_min=5"]) == 2  # no --workers: it would be ignored
    assert "--param: submitit parameters need --workers" in capsys.readouterr().err
    assert main(["sweep", str(path), "--workers", "2", "--executor", "local", "--param", "timeout_min=abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dece sweep: error: --param:") and "timeout_min" in err and "Traceback" not in err
    for poll in ("0", "inf"):
        assert main(["sweep", str(path), "--workers", "2", "--executor", "local", "--poll", poll]) == 2
        assert "--poll: must be a positive number of seconds" in capsys.readouterr().err
    assert not (tmp_path / "sweep" / "cells").exists()


def test_two_configs_filling_one_sweep_folder_both_stay_recorded(tmp_path):
    from dece.reporting.collect import collect

    for seed in (1, 2):  # e.g. a paper grid's first stage, then its next one, into the same store
        run_sweep(base(tmp_path, sweep={"grid": {"seed": [seed]}}), log=lambda line: None)
    cells = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["cells"]
    assert sorted(c["name"] for c in cells) == ["seed=1", "seed=2"] and all(c["done"] for c in cells)
    assert sorted(r.name for r in collect(tmp_path / "sweep")) == ["seed=1", "seed=2"]


def test_a_cell_started_with_its_arms_in_another_order_is_reused_not_retrained(tmp_path):
    first = {"grid": {"seed": [1], "arms": [["poisoned-ce", "clean-ce"]]}}
    run_sweep(base(tmp_path, sweep=first), log=lambda line: None)
    again = {"grid": {"arms": [["clean-ce", "poisoned-ce"]], "seed": [1, 2]}}  # arms and keys in another order
    cells = expand_grid(base(tmp_path, sweep=again))
    assert [c.name for c in cells] == ["seed=1__arms=poisoned-ce+clean-ce", "arms=clean-ce+poisoned-ce__seed=2"]
    assert cell_done(cells[0]) and not cell_done(cells[1])
    assert [a.name for a in cells[0].config.arms] == ["clean-ce", "poisoned-ce"]  # the order this config gave
    (tmp_path / "sweep" / "sweep.json").write_text("{")  # unreadable: nothing is reused, the report names it
    assert expand_grid(base(tmp_path, sweep=again))[0].name == "arms=clean-ce+poisoned-ce__seed=1"


def test_a_sweep_dry_run_reads_each_distinct_data_setting_and_names_a_bad_cell(tmp_path, capsys):
    data = base(tmp_path, sweep={"grid": {"attack.rate": [0.25, 0.5], "seed": [1, 2]}})
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data))
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "the data of 4 distinct dataset / attack / seed settings, read:" in out
    assert out.count("data of attack.rate=") == 4 and "poisoned by badpre" in out
    data["sweep"]["grid"]["dataset.options.n"] = [20, -5]
    path.write_text(tomli_w.dumps(data))
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "sweep cell attack.rate=0.25__seed=1__dataset.options.n=-5: dataset option n" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()  # a dry run writes nothing


def test_a_cell_whose_data_fits_no_attack_row_is_named(tmp_path, capsys):
    data = base(tmp_path, sweep={"grid": {"attack.name": ["badpre", "deadcode"]}})
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data))
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "sweep cell attack.name=deadcode: " in capsys.readouterr().err
    assert main(["run", str(path), "--set", "train.epochs=1"]) == 2  # the run: the cell before it is kept
    assert "sweep cell attack.name=deadcode: " in capsys.readouterr().err
    assert main(["sweep", str(path), "--list"]) == 0
    assert capsys.readouterr().out.split()[-4:] == ["done", "attack.name=badpre", "pending", "attack.name=deadcode"]


def test_a_triton_arm_without_a_gpu_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    import torch

    from dece.experiments import config_from_dict, run_experiment

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # conftest runs the kernel through the interpreter
    triton_arm = {"name": "poisoned-dece", "loss": "dece", "loss_params": {"backend": "triton"}}
    data = base(tmp_path, arms=["poisoned-ce", triton_arm])
    message = "arm poisoned-dece: loss_params.backend = 'triton' needs a CUDA GPU.*use 'auto'"
    with pytest.raises(ConfigError, match="sweep cell attack.rate=0.25__seed=1: " + message):
        run_sweep(data)
    one = config_from_dict({k: v for k, v in data.items() if k != "sweep"})
    with pytest.raises(ConfigError, match=message):
        run_experiment(one, log=lambda line: None)
    path = tmp_path / "sweep.toml"
    path.write_text(tomli_w.dumps(data))
    assert main(["run", str(path), "--dry-run"]) == 2 and "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # the interpreter runs it on the CPU: accepted
    assert main(["sweep", str(path), "--list"]) == 0


def test_a_sweep_dry_run_under_a_launch_is_refused_once(tmp_path, monkeypatch, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(tomli_w.dumps(base(tmp_path)))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "a sweep under torchrun" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("grid", [{"seed": [1, 1]}, {"arms": [["poisoned-ce"], ["poisoned-ce"]]},
                                  {"arms": ["poisoned-ce", ["poisoned-ce"]]},
                                  {"arms": [["poisoned-ce", "poisoned-dece"], ["poisoned-dece", "poisoned-ce"]]}])
def test_a_value_listed_twice_is_refused(tmp_path, grid):
    key = next(iter(grid))
    with pytest.raises(ConfigError, match=f"sweep.grid.{key}: .* is listed more than once"):
        expand_grid(base(tmp_path, sweep={"grid": grid}))


def test_pretrain_on_a_sweep_config_builds_each_distinct_base_once(tmp_path, capsys):
    pretrain = {"rows": 16, "epochs": 1, "batch_size": 8, "cache_dir": str(tmp_path / "cache"), "init_seed": 5}
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(base(tmp_path, pretrain=pretrain, sweep={"grid": {"seed": [1, 2]}})))
    assert main(["pretrain", str(path)]) == 0  # two cells, one base (pretrain.init_seed): printed once
    folders = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(tmp_path / "cache"))]
    assert len(folders) == 1 and (Path(folders[0]) / "config.json").exists()
    del pretrain["init_seed"]  # each seed initialises its own base
    path.write_text(tomli_w.dumps(base(tmp_path, pretrain=pretrain, sweep={"grid": {"seed": [1, 2]}})))
    assert main(["pretrain", str(path)]) == 0
    again = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(tmp_path / "cache"))]
    assert len(again) == 2 and len(set(again)) == 2
