"""The processes of a multi-process launch (``torchrun`` or ``accelerate launch``): one arm trained by all
of them (DDP through the Hugging Face Trainer, FSDP / DeepSpeed through the user's accelerate config).

Outside a launch (``WORLD_SIZE`` unset or 1) every function here is the single-process identity: nothing
is initialised, :func:`on_main` just calls, :func:`split` and :func:`gather` return their input. Inside
one, the process group is the one accelerate's ``PartialState`` sets up from the launcher's environment
(gloo on CPU, NCCL on GPUs), the same one the Trainer uses.

The rules the experiment runner follows with these: every process computes what is deterministic
(data preparation, model building, scoring), the main process (global rank 0) alone writes files and
logs, and every write a later step reads is followed by a barrier (:func:`on_main` is one).
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable, Sequence, TypeVar

from dece.errors import ConfigError

T = TypeVar("T")


def world_size() -> int:
    """Processes of the launch (the launcher's ``WORLD_SIZE``); 1 outside a launch."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def local_world_size() -> int:
    """Processes of the launch on this machine (the launcher's ``LOCAL_WORLD_SIZE``, else ``WORLD_SIZE``)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "") or world_size())


def launched() -> bool:
    """True in a process of a multi-process launch (``WORLD_SIZE`` > 1)."""
    return world_size() > 1


def rank() -> int:
    """Global rank of this process (the launcher's ``RANK``); 0 outside a launch."""
    return int(os.environ.get("RANK", "0") or 0)


def is_main() -> bool:
    """True in the process that writes files and logs: rank 0, or the only process."""
    return rank() == 0


def _state():
    """accelerate's process state, as the Trainer makes it (``use_cpu`` without CUDA: a gloo group on CPU)."""
    import torch
    from accelerate import PartialState  # initialises the process group from the launcher's environment

    return PartialState(cpu=not torch.cuda.is_available())


def on_main(fn: Callable[[], T]) -> T:
    """Calls ``fn`` on the main process only; every process returns its result (which must pickle). An
    exception raised by ``fn`` is raised on every process (the same exception, or a RuntimeError with its
    message when it does not pickle), so no process is left waiting. A barrier for what ``fn`` wrote."""
    if not launched():
        return fn()
    from accelerate.utils import broadcast_object_list

    _state()
    payload: list[Any] = [None]
    if is_main():
        try:
            payload = [("ok", fn())]
        except Exception as error:  # shared with the other processes, then raised here too
            payload = [("error", _picklable(error))]
    broadcast_object_list(payload, from_process=0)
    kind, value = payload[0]
    if kind == "error":
        raise value
    return value


def main_first(fn: Callable[[bool], T]) -> T:
    """``fn(True)`` on the main process (it may write, e.g. a data folder or a cache), then, once that
    returned, ``fn(False)`` on the others (they compute the same without writing, or read what it wrote).
    Outside a launch: ``fn(True)``. An exception of the main process's call is raised on every process."""
    if not launched():
        return fn(True)
    mine: list[Any] = [None]
    on_main(lambda: mine.__setitem__(0, fn(True)))
    return mine[0] if is_main() else fn(False)


def shutdown() -> None:
    """Ends this process's part of the launch: destroys the process group if one was initialised, so that the
    backend's threads (gloo's) are joined before the interpreter exits; without it a rank may abort at exit
    ("terminate called without an active exception") after its work is done. A no-op outside a launch."""
    if not launched():
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any unpicklable exception is passed on by its message
        return RuntimeError(f"{type(error).__name__}: {error}")


def split(items: Sequence[T]) -> list[T]:
    """This process's contiguous share of ``items`` (the first ``len % world`` processes get one more);
    :func:`gather` of the shares is ``items`` again, in order."""
    n, world, r = len(items), world_size(), rank()
    if world == 1:
        return list(items)
    base, extra = divmod(n, world)
    start = r * base + min(r, extra)
    return list(items[start:start + base + (1 if r < extra else 0)])


def gather(share: list[T]) -> list[T]:
    """Every process's ``share`` concatenated in rank order, on every process."""
    if not launched():
        return share
    from accelerate.utils import gather_object

    _state()
    return list(gather_object(share))


def per_process_batch(batch_size: int, field: str = "train.batch_size") -> int:
    """The per-process batch that keeps the global batch at ``batch_size`` rows per optimizer step, so a
    launch on N processes takes the same steps over the same rows as one process.

    Raises:
        ConfigError: ``batch_size`` is not a multiple of the number of processes.
    """
    world = world_size()
    if batch_size % world:
        raise ConfigError(f"{field} = {batch_size} does not split over the {world} launched processes: "
                          f"choose a multiple of {world} (it is the global batch, per optimizer step)")
    return batch_size // world
