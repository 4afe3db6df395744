"""``dece run``: one config -> poison -> (pretrain) -> train each arm -> generate -> score -> table.

Arms whose ``metrics.json`` exists with the same fingerprint are not rerun; an arm killed mid-way
resumes from its last epoch checkpoint. A changed config in an existing run folder is refused rather
than mixed with old results.

With ``jobs > 1`` the arms run in that many worker processes at once (after the shared pretraining),
each with ``train.threads`` torch threads (default: the CPU count divided by ``jobs``, at least 1).
On a small CPU, one single-threaded process per arm uses the cores better than intra-op threads of a
tiny model do. Data-defense arms start after the other arms, so a plain CE arm can be their reference
(without such an arm, they run one at a time: the first trains the reference model they share), and
so do input-defense arms that generate with a plain CE arm's model.
Which process trained an arm does not enter its fingerprint (nor does ``train.threads``). The workers'
log lines come back to the caller's ``log`` (a sweep's tagged log, a test's list), not to their stdout.

Under a multi-process launch (``torchrun ... -m dece run CONFIG`` or ``accelerate launch -m dece run
CONFIG``) every launched process trains each arm (DDP through the Trainer, ``train.batch_size`` being the
global batch), generation is split across the processes, and the main process alone takes the run lock,
writes and logs (:mod:`dece.training.distributed`); :func:`check_launch` says what it refuses
(and :func:`check_backends` what no machine without a GPU can run).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import multiprocessing
import os
import queue as queue_module
import signal
import threading
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from transformers.utils import logging as hf_logging

from dece.errors import ConfigError
from dece.evaluation import generation
from dece.experiments.arm import evaluate_arm, load_trained, train_arm
from dece.experiments.base_model import base_model_spec
from dece.experiments.config import ArmConfig, ExperimentConfig, check_model_source, config_from_dict, dump_config
from dece.experiments.data_prep import PreparedData, prepare_data
from dece.experiments.defended import (
    apply_data_defense,
    defense_of,
    finished_plain_ce_arm,
    has_data_defense,
    prepare_input_defense,
    reuses_plain_ce_model,
    training_defense_report,
)
from dece.experiments.dynamics import epoch_callbacks
from dece.experiments.plan import plan_experiment
from dece.experiments.store import (
    arm_fingerprint,
    arm_state,
    run_lock,
    saved_training,
    training_fingerprint,
    write_json_atomic,
    write_text_atomic,
)
from dece.experiments.table import results_table
from dece.models import ModelSpec
from dece.training.distributed import (
    is_main,
    launched,
    local_world_size,
    main_first,
    on_main,
    per_process_batch,
    world_size,
)


def _check_data_unchanged(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Refuses a config whose data (dataset, attack) differs from that of the results already in
    ``run_dir``: writing the new data would leave the old arms' rows unrecorded."""
    old_path = run_dir / "config.toml"
    if not old_path.exists() or not any((run_dir / "arms").glob("*/metrics.json")):
        return
    try:
        old = config_from_dict(tomllib.loads(old_path.read_text(encoding="utf-8")))
    except (ConfigError, tomllib.TOMLDecodeError, OSError):
        return  # unreadable (an older format): each arm's own fingerprint still guards its results
    if old.fingerprint("dataset", "attack", "seed") != cfg.fingerprint("dataset", "attack", "seed"):
        raise ConfigError(
            f"{run_dir} holds results on other data (its config.toml has another [dataset], [attack] or seed); "
            "choose another output_dir or delete that folder"
        )


def worker_threads(cfg: ExperimentConfig) -> int:
    """Torch threads of each arm: ``train.threads``, else the CPU count shared among ``jobs`` (0 with
    ``jobs = 1``: torch's default)."""
    if cfg.train.threads:
        return cfg.train.threads
    return 0 if cfg.jobs == 1 else max(1, (os.cpu_count() or 1) // cfg.jobs)


def run_arm(cfg: ExperimentConfig, arm: ArmConfig, data: PreparedData, base: ModelSpec,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Trains, generates and scores one arm; writes ``arms/ARM/`` and returns its metrics."""
    run_dir = Path(cfg.output_dir)
    arm_dir = run_dir / "arms" / arm.name
    arm_cfg = ExperimentConfig(**{**cfg.__dict__, "arms": (arm,)})
    on_main(lambda: write_text_atomic(arm_dir / "config.toml", dump_config(arm_cfg)))
    rows = data.train_rows(arm.data)
    defense, defense_report, defend = defense_of(arm), None, None
    if defense is not None and defense.kind == "data":
        rows, defense_report = apply_data_defense(cfg, arm, data, base, run_dir, arm_dir, log)
    elif defense is not None and defense.kind == "training":
        defense_report = training_defense_report(arm)
    elif defense is not None and defense.kind == "input":  # before training: a failing LM load fails fast
        defend, defense_report = prepare_input_defense(arm, data, log)
    same = finished_plain_ce_arm(cfg, arm.data, run_dir) if reuses_plain_ce_model(cfg, arm) else None
    if same is not None:  # an input defense in front of a model this run has trained already
        model, tokenizer, is_enc_dec = load_trained(base, run_dir / "arms" / same.name / "model")
        seconds, defense_report = 0.0, {**defense_report, "model": f"arms/{same.name}"}
        log(f"[{arm.name}] the model of arm {same.name}, which trains the same way")
    else:
        trains = saved_training(arm_dir, training_fingerprint(cfg, arm)) is None  # else train_arm loads the model
        if trains:
            log(f"[{arm.name}] training on {len(rows)} {arm.data} rows with loss {arm.loss}"
                + (f" and defense {arm.defense}" if arm.defense else "") + f" for {cfg.train.epochs} epochs")
        model, tokenizer, is_enc_dec, seconds = train_arm(
            cfg, arm, base, rows, arm_dir, epoch_callbacks(cfg, data, base, list(rows), arm_dir), log=log)
        if trains:
            log(f"[{arm.name}] trained in {seconds:.0f} s")
    log(f"[{arm.name}] generating on {len(data.clean_test)} clean"
        + (f" + {len(data.triggered_test)} triggered" if data.triggered_test else "") + " test rows")
    started = time.perf_counter()
    metrics = evaluate_arm(cfg, model, tokenizer, is_enc_dec, data.clean_test, data.triggered_test,
                           data.attack.detect if data.attack else None, cfg.eval.lang or data.language, arm_dir,
                           defend=defend)
    if defense_report is not None:
        metrics["defense"] = defense_report
    metrics.update(fingerprint=arm_fingerprint(cfg, arm), train_fingerprint=training_fingerprint(cfg, arm),
                   train_seconds=round(seconds, 1),
                   eval_seconds=round(time.perf_counter() - started, 1))
    on_main(lambda: write_json_atomic(arm_dir / "metrics.json", metrics))
    log(f"[{arm.name}] " + json.dumps({k: v for k, v in metrics.items() if k != "fingerprint"}, default=str))
    return metrics


_LOG_QUEUE: Any = None  # in a worker process: where its log lines go (the parent passes them to its ``log``)


def die_with_parent() -> None:
    """Makes the calling (worker) process receive SIGKILL when its parent dies, so a killed run leaves
    no worker behind (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread that watches the parent)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(1, signal.SIGKILL) == 0:  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _init_worker(queue: Any, threads: int) -> None:
    global _LOG_QUEUE
    die_with_parent()
    _LOG_QUEUE = queue
    generation.PROGRESS_BARS = False  # one line per event from workers, no bars interleaved with them
    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()


def _worker_log(message: str) -> None:
    _LOG_QUEUE.put(message)


def _run_arm_in_worker(cfg: ExperimentConfig, arm: ArmConfig, base: ModelSpec) -> dict[str, Any]:
    """A worker process's job: the data is prepared again (deterministic, not rewritten) and one arm run.
    Its last queued item, even when the arm fails, is None: all its log lines came before."""
    try:
        return run_arm(cfg, arm, prepare_data(cfg), base, _worker_log)
    finally:
        _LOG_QUEUE.put(None)


def _relay_logs(queue: Any, futures: list, log: Callable[[str], None]) -> None:
    """Passes the workers' log lines to ``log`` until every job has sent its end mark (or, for a worker
    that died without one, until every job is over)."""
    ended = 0
    while ended < len(futures):
        try:
            line = queue.get(timeout=0.5)
        except queue_module.Empty:
            if all(f.done() for f in futures) and any(f.exception() is not None for f in futures):
                return
            continue
        if line is None:
            ended += 1
        else:
            log(line)


def _run_arms(cfg: ExperimentConfig, arms: list[ArmConfig], data: PreparedData, base: ModelSpec, workers: int,
              log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Runs ``arms`` in this process (``jobs = 1``, or one arm or worker at a time: no process to spawn) or
    in ``workers`` spawned processes, whose log lines reach ``log`` here, in the order they were written."""
    workers = min(workers, len(arms))
    if cfg.jobs > 1 and arms:
        log(f"running {len(arms)} arm(s) in {workers} process(es) of {worker_threads(cfg)} thread(s)")
    if cfg.jobs == 1 or workers <= 1:
        if cfg.jobs > 1 and arms:
            torch.set_num_threads(worker_threads(cfg))  # as a worker would have
        return {arm.name: run_arm(cfg, arm, data, base, log) for arm in arms}
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(queue, worker_threads(cfg))) as pool:
        futures = {arm.name: pool.submit(_run_arm_in_worker, cfg, arm, base) for arm in arms}
        _relay_logs(queue, list(futures.values()), log)
        return {name: future.result() for name, future in futures.items()}


def run_experiment(cfg: ExperimentConfig, log: Callable[[str], None] = print,
                   locked: bool = False) -> dict[str, dict[str, Any]]:
    """Runs every arm of ``cfg`` not already done; returns ``{arm: metrics}`` and writes the run folder.
    ``locked``: the caller holds the folder's run lock already (a sweep worker that claimed the cell).

    Raises:
        RunLockedError: another process is writing the same folder.
        ConfigError: the folder holds results, models or checkpoints of another config.
    """
    check_model_source(cfg.model)  # before anything is written
    check_launch(cfg)
    check_backends(cfg)
    if launched():  # torchrun starts each process in a session of its own: a killed launcher must take them
        die_with_parent()
    if not is_main():  # under a multi-process launch the main process alone logs
        log, generation.PROGRESS_BARS = _quiet, False
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar at every epoch checkpoint
    threads = worker_threads(cfg)
    if threads and cfg.jobs == 1:
        torch.set_num_threads(threads)
    if locked:
        return _run_locked(cfg, log)
    with _launch_lock(Path(cfg.output_dir)):
        return _run_locked(cfg, log)


def _quiet(message: str) -> None:
    """The log of a process other than the main one of a launch."""


@contextlib.contextmanager
def _launch_lock(run_dir: Path) -> Iterator[None]:
    """:func:`run_lock`, held by the main process for all the processes of a launch (a refusal is raised
    on every process)."""
    held = contextlib.ExitStack()
    on_main(lambda: held.enter_context(run_lock(run_dir)) and None)
    with held:
        yield


def check_launch(cfg: ExperimentConfig) -> None:
    """Under a multi-process launch (``torchrun`` / ``accelerate launch``), refuses what it cannot run,
    before any work: ``jobs > 1`` (the launch's processes train each arm together, one arm at a time),
    a data defense (its reference model and row scores are single-process code), ``train.fused_head``
    under FSDP (``accelerate launch`` with an FSDP config: the head's weight is sharded), a global batch
    that does not split over the processes, more processes on a machine than it has visible GPUs (NCCL
    runs one process per GPU; measured: two processes on one H200 exit without training).

    Raises:
        ConfigError: naming the key to change.
    """
    if not launched():
        return
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and local_world_size() > gpus:
        raise ConfigError(f"{local_world_size()} processes on this machine but {gpus} visible GPU(s): a launch runs one "
                          f"process per GPU; launch {gpus} (--nproc_per_node {gpus} / --num_processes {gpus}), or "
                          "hide the GPUs (CUDA_VISIBLE_DEVICES=) to train on the CPU")
    if cfg.jobs > 1:
        raise ConfigError(f"jobs = {cfg.jobs} under a launch of {world_size()} processes: the launched processes "
                          "train each arm together, one arm at a time; set jobs = 1 (e.g. --set jobs=1)")
    data_defenses = [a.name for a in cfg.arms if has_data_defense(a)]
    if data_defenses:
        raise ConfigError(f"arms {', '.join(data_defenses)}: data defenses run in one process only; run them "
                          "without torchrun / accelerate launch (or leave them out of this config)")
    if cfg.train.fused_head and os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
        raise ConfigError("train.fused_head under FSDP: the fused loss reads the whole output-head weight, which FSDP "
                          "shards; set train.fused_head = false, or launch with DDP or DeepSpeed instead")
    per_process_batch(cfg.train.batch_size)
    if cfg.pretrain is not None:
        per_process_batch(cfg.pretrain.batch_size, "pretrain.batch_size")


def check_backends(cfg: ExperimentConfig) -> None:
    """Refuses, before any work, an arm whose loss asks for ``backend = "triton"`` where no CUDA GPU is
    visible (the kernel runs on CUDA tensors; ``TRITON_INTERPRET=1`` runs it on the CPU, for testing).

    Raises:
        ConfigError: naming the arm and the values that would run here.
    """
    if torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1":
        return
    for arm in cfg.arms:
        if arm.loss_params.get("backend") == "triton":
            raise ConfigError(f"arm {arm.name}: loss_params.backend = 'triton' needs a CUDA GPU and none is visible; "
                              "use 'auto' (the kernel on a GPU, the PyTorch math elsewhere) or 'torch'")


def _run_locked(cfg: ExperimentConfig, log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    run_dir = Path(cfg.output_dir)
    # check first, write after (the check may drop a checkpoint torn by a kill: the main process does it)
    states = on_main(lambda: {arm.name: arm_state(cfg, arm, run_dir) for arm in cfg.arms})
    _check_data_unchanged(cfg, run_dir)
    on_main(lambda: _write_config(cfg, run_dir))
    data = main_first(lambda main: prepare_data(cfg, run_dir if main else None))
    if data.poison_report:
        r = data.poison_report
        short = f", {r['n_requested']} requested" if r.get("n_requested", 0) > r["n_poisoned"] else ""
        log(f"poisoned {r['n_poisoned']} of {r['n_rows']} training rows ({r['n_eligible']} eligible{short}); "
            f"triggered test rows: {len(data.triggered_test or [])}; clean test rows: {len(data.clean_test)}"
            + (f"; {r['test']['n_already_matching']} test rows whose clean target already carries the payload "
               "are left out of ASR and FTR" if r["test"]["n_already_matching"] else ""))
    results: dict[str, dict[str, Any]] = {}
    pending: list[ArmConfig] = []
    for arm in cfg.arms:
        done = states[arm.name]
        if done is not None:
            log(f"[{arm.name}] done already, skipped")
            results[arm.name] = done
        else:
            pending.append(arm)
    if pending:
        base = base_model_spec(cfg, data.clean_train, run_dir, log)
        # the plan's stage 1 (arms that use another arm's model or losses) comes after stage 0; data
        # defenses without a CE arm share a reference model trained by the first of them: one at a time then
        plans = {p.name: p for p in plan_experiment(cfg)}
        first = [a for a in pending if plans[a.name].stage == 0]
        later = [a for a in pending if plans[a.name].stage == 1]
        results.update(_run_arms(cfg, first, data, base, cfg.jobs, log))
        workers = cfg.jobs if all(plans[a.name].parallel for a in later) else 1
        results.update(_run_arms(cfg, later, data, base, workers, log))
    results = {a.name: results[a.name] for a in cfg.arms}  # config order
    table = results_table([(a.name, results[a.name]) for a in cfg.arms], cfg.eval.metrics)
    on_main(lambda: _write_results(cfg, run_dir, table, data.poison_report, results))
    log("\n" + table)
    return results


def _write_config(cfg: ExperimentConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.toml", dump_config(cfg))


def _write_results(cfg: ExperimentConfig, run_dir: Path, table: str, poison_report: dict[str, Any] | None,
                   results: dict[str, dict[str, Any]]) -> None:
    write_text_atomic(run_dir / "results.md", f"# {cfg.name}\n\n{table}")
    write_json_atomic(run_dir / "results.json", {"name": cfg.name, "poison_report": poison_report, "arms": results})
