"""A sweep on many workers through ``submitit`` (SLURM job arrays, or local processes to try it out): each
worker runs :func:`dece.experiments.sweep.run_sweep` with ``wait``, so the cells' run locks share the
grid out, nobody runs a cell twice, and the cell of a worker that dies is taken over by another. No
scheduler of our own: submitit submits, SLURM (or the local executor) runs, the shared folder coordinates.
"""

from __future__ import annotations

from typing import Any, Mapping

from dece.errors import ConfigError

#: ``--executor`` -> submitit's ``cluster`` argument
EXECUTORS = {"local": "local", "slurm": "slurm"}


def sweep_worker(data: Mapping[str, Any], wait: float) -> list[dict[str, Any]]:
    """One worker's job: run the sweep's cells until every one is done (picklable; runs in the job)."""
    from dece.experiments.sweep import run_sweep

    return run_sweep(data, wait=wait)


def submit_sweep(data: Mapping[str, Any], workers: int, executor: str = "local",
                 params: Mapping[str, Any] | None = None, wait: float = 30.0) -> list[Any]:
    """Submit ``workers`` jobs that share the sweep of ``data`` out between them.

    Args:
        data: the config mapping with its ``[sweep]`` table (its ``output_dir`` must be on a folder every
            worker sees).
        workers: how many jobs (a SLURM job array of that size).
        executor: ``"slurm"`` or ``"local"`` (processes on this machine, to try a launch out).
        params: passed to ``submitit``'s ``update_parameters`` (e.g. ``timeout_min``, ``slurm_partition``,
            ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``).
        wait: seconds between a worker's polls of cells that others hold.

    Returns:
        The submitted ``submitit`` jobs (``job.job_id``; ``job.result()`` waits for one).

    Raises:
        ConfigError: an unknown executor, ``workers`` < 1, SLURM asked for where it is not installed, or a
            parameter ``submitit`` does not take.
    """
    import submitit

    if executor not in EXECUTORS:
        raise ConfigError(f"--executor: one of {', '.join(EXECUTORS)}, got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers: a positive number of jobs, got {workers!r}")
    from dece.experiments.sweep import sweep_dir

    folder = sweep_dir(data) / "submitit"
    try:
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=EXECUTORS[executor])
    except RuntimeError as err:  # no sbatch/srun on this machine
        raise ConfigError(f"--executor {executor}: {err} (on a machine without SLURM: --executor local)") from None
    try:
        ex.update_parameters(name=f"dece-{data.get('name', 'sweep')}", **dict(params or {}))
    except (TypeError, ValueError, NameError, AssertionError) as err:  # submitit: NameError (unknown), AssertionError (type)
        raise ConfigError(f"--param: {str(err).splitlines()[0]}") from None
    data = {**data, "output_dir": str(sweep_dir(data).resolve())}  # the same folder from any working directory
    with ex.batch():
        jobs = [ex.submit(sweep_worker, data, wait) for _ in range(workers)]
    return jobs
