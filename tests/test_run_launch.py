"""`dece run` under a two-process launch (torchrun, DDP over gloo on the CPU): every process trains each
arm and generates a slice of the test rows, the main process alone writes. The same tiny config gives
the same pretrained base and trained weights (to float tolerance) and identical predictions, metrics and
tables under one and two processes, and a two-process run killed after an epoch checkpoint resumes."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dece.errors import ConfigError
from dece.experiments import config_from_dict, run_experiment
from dece.experiments.runner import check_launch
from dece.experiments.sweep import run_sweep
from run_fixtures import pythonpath

CONFIG = {
    "name": "launch",
    "arms": ["poisoned-ce", "poisoned-dece"],
    "dataset": {"kind": "builtin", "options": {"n": 40, "seed": 3}},  # 40 rows: 5 batches of 8, 5 of 4 per process
    "attack": {"name": "badpre", "rate": 0.25},
    "model": {"name": "t5-tiny", "d_model": 32, "layers": 1, "heads": 2, "ff": 64, "vocab_size": 300,
              "dropout": 0.0, "max_source_length": 64, "max_target_length": 48},  # no dropout: no per-process RNG
    "pretrain": {"rows": 32, "epochs": 1, "batch_size": 8, "learning_rate": 1e-2},
    "train": {"epochs": 4, "batch_size": 8, "learning_rate": 1e-2, "threads": 1,  # varied predictions
              "group_by_length": True},  # the length-grouped order, too, is the same under 1 and 2 processes
    "eval": {"max_new_tokens": 16, "batch_size": 8, "metrics": ["bleu", "exact_match"]},
    "dynamics": {"eval_rows": 4, "loss_rows": 6},
}
ARMS = CONFIG["arms"]
SECONDS = ("train_seconds", "eval_seconds")


def _config(root: Path, name: str) -> dict:
    return {**CONFIG, "output_dir": str(root / name),
            "pretrain": {**CONFIG["pretrain"], "cache_dir": str(root / f"cache-{name}")}}


def _launch_cmd(config: Path) -> list[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(port), "-m", "dece", "run", str(config)]


def _write_toml(root: Path, name: str) -> Path:
    import tomli_w

    path = root / f"{name}.toml"
    path.write_text(tomli_w.dumps(_config(root, name)))
    return path


# gloo on the CPU, also on a machine with a GPU (one GPU cannot take two launched processes: refused)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath(Path(__file__).parents[1] / "src"),
       "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(autouse=True, scope="module")
def _on_the_cpu():
    """These tests launch gloo processes on the CPU; a machine's GPU would change the in-process runs they are
    compared with (the launched ones see none: ENV)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.cuda, "is_available", lambda: False)
        yield


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("launch")
    run_experiment(config_from_dict(_config(root, "single")), log=lambda line: None)
    return root


def _same_run(a: Path, b: Path) -> None:
    base_a, = [p for p in (a.parent / f"cache-{a.name}").glob("t5-tiny-*") if p.is_dir()]
    base_b, = [p for p in (b.parent / f"cache-{b.name}").glob("t5-tiny-*") if p.is_dir()]
    assert base_a.name == base_b.name  # the same pretraining key
    # Adam turns the float-order noise of a near-zero gradient into a step of up to ~lr: the arms' weights
    # agree to within the learning rate (observed at lr 1e-2: 1e-6 to 8e-4, and 4.4e-3 on one weight of 2048
    # on 2026-12-01, machine loaded), the base's (one epoch) to float precision; a doubled global batch moves
    # them by 8e-2 (CE) and 1e-1 (DeCE), 8x this bound
    atol = {"base": 1e-5, **{arm: CONFIG["train"]["learning_rate"] for arm in ARMS}}
    for key, x, y in [("base", base_a / "model.safetensors", base_b / "model.safetensors")] + [
            (arm, a / "arms" / arm / "model" / "model.safetensors", b / "arms" / arm / "model" / "model.safetensors")
            for arm in ARMS]:
        wa, wb = load_file(x), load_file(y)
        for name in wa:
            torch.testing.assert_close(wb[name], wa[name], rtol=0, atol=atol[key], msg=lambda m: f"{y}: {name}\n{m}")
    for arm in ARMS:
        ma = json.loads((a / "arms" / arm / "metrics.json").read_text())
        mb = json.loads((b / "arms" / arm / "metrics.json").read_text())
        assert {k: v for k, v in mb.items() if k not in SECONDS} == {k: v for k, v in ma.items() if k not in SECONDS}
        preds = (a / "arms" / arm / "predictions.jsonl").read_text()
        assert len({json.loads(line)["pred"] for line in preds.splitlines()}) > 3  # a wrong row order would show
        assert (b / "arms" / arm / "predictions.jsonl").read_text() == preds
        epochs = [json.loads(line)["epoch"] for line in (b / "arms" / arm / "dynamics.jsonl").read_text().splitlines()]
        assert epochs == list(range(1, CONFIG["train"]["epochs"] + 1))  # one process wrote each epoch once
    strip = lambda p: {k: {n: {m: v for m, v in r.items() if m not in SECONDS} for n, r in d.items()} if k == "arms" else d
                       for k, d in json.loads(p.read_text()).items() if k != "name"}
    assert strip(b / "results.json") == strip(a / "results.json")


@pytest.mark.slow
def test_two_processes_killed_mid_arm_resume_and_end_as_one_process(single):
    """One launch is SIGKILLed (the launcher alone: its workers must die with it) after poisoned-ce's epoch-2
    checkpoint; the next launch resumes that arm and trains poisoned-dece uninterrupted. Both arms, the
    base, the predictions and the tables must then be those of the one-process run."""
    root = single
    config = _write_toml(root, "killed")
    checkpoint = root / "killed" / "arms" / "poisoned-ce" / "checkpoints" / "checkpoint-10" / "trainer_state.json"
    log = root / "killed.log"
    with log.open("w") as out:
        proc = subprocess.Popen(_launch_cmd(config), env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):  # a launch that ended by itself: its log says why
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert checkpoint.exists() and not (root / "killed" / "arms" / "poisoned-ce" / "model").exists(), \
        f"the run was not killed between its epoch-2 checkpoint and its end; its output:\n{log.read_text()[-4000:]}"
    rerun = subprocess.run(_launch_cmd(config), env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "find_unused_parameters=True was specified" not in rerun.stderr  # DDP walks no graph for unused weights
    assert "[poisoned-ce] resuming from checkpoint-10" in rerun.stdout
    assert rerun.stdout.count("[poisoned-dece] trained in") == 1  # the main process alone logs
    _same_run(root / "single", root / "killed")


def test_a_launch_refuses_what_it_cannot_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="jobs = 2"):
        check_launch(config_from_dict({**_config(tmp_path, "x"), "jobs": 2}))
    with pytest.raises(ConfigError, match="train.batch_size = 9"):
        check_launch(config_from_dict({**_config(tmp_path, "x"), "train": {**CONFIG["train"], "batch_size": 9}}))
    with pytest.raises(ConfigError, match="poisoned-bki: data defenses"):
        check_launch(config_from_dict({**_config(tmp_path, "x"), "arms": ["poisoned-ce", "poisoned-bki"]}))
    check_launch(config_from_dict(_config(tmp_path, "x")))  # the tested config itself passes
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(ConfigError, match="fused_head under FSDP"):
        check_launch(config_from_dict({**_config(tmp_path, "x"), "train": {**CONFIG["train"], "fused_head": True}}))
    with pytest.raises(ConfigError, match="a sweep under torchrun"):
        run_sweep({**_config(tmp_path, "x"), "sweep": {"grid": {"seed": [1, 2]}}})
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"2 processes on this machine but 1 visible GPU\(s\).*--nproc_per_node 1"):
        check_launch(config_from_dict(_config(tmp_path, "x")))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # two machines of one GPU each
    check_launch(config_from_dict(_config(tmp_path, "x")))
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_the_shares_of_the_processes_gather_to_the_rows_in_order(monkeypatch):
    from dece.training.distributed import split

    rows = list(range(7))
    for world in (1, 2, 3, 8):
        monkeypatch.setenv("WORLD_SIZE", str(world))
        shares = []
        for rank in range(world):
            monkeypatch.setenv("RANK", str(rank))
            shares.append(split(rows))
        assert [x for share in shares for x in share] == rows
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_a_dry_run_under_a_launch_checks_as_the_run_would_and_errors_print_once(tmp_path, monkeypatch, capsys):
    from dece.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    config = _write_toml(tmp_path, "dry")
    monkeypatch.setenv("RANK", "0")
    assert main(["run", str(config), "--dry-run"]) == 0
    assert "2 launched processes" in capsys.readouterr().out
    assert main(["run", str(config), "--dry-run", "--set", "jobs=2"]) == 2
    assert "jobs = 2 under a launch of 2 processes" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")  # the other processes say nothing: the main one says it
    assert main(["run", str(config), "--dry-run", "--set", "jobs=2"]) == 2
    assert main(["run", str(config), "--dry-run"]) == 0
    assert capsys.readouterr() == ("", "")


def test_shutdown_destroys_the_launch_process_group_and_nothing_outside_one(tmp_path, monkeypatch):
    """`dece` ends each launched process by destroying its process group (gloo's threads joined before exit);
    outside a launch it leaves a group the caller made alone."""
    import torch.distributed as dist

    from dece.training.distributed import shutdown

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
        shutdown()
        assert dist.is_initialized()
        monkeypatch.setenv("WORLD_SIZE", "2")
        shutdown()
        assert not dist.is_initialized()
        shutdown()  # twice: nothing left to destroy, no error
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
