"""Two CPU processes (DDP over gloo) give the same update as one process on the whole batch: the loss
is normalised by the token count of the global batch, not per process. Launched both by torchrun and
by `accelerate launch --multi_gpu` (on a CPU-only machine accelerate's `--cpu` flag starts a single
process; `--multi_gpu` starts the gloo DDP group)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from run_fixtures import pythonpath

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAUNCHERS = {
    "torchrun": lambda port: [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                              "--master_addr", "127.0.0.1", "--master_port", str(port)],
    "accelerate": lambda port: [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                                "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                                "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)],
}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_process_ddp_equals_single_process(tmp_path, launcher):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath(WORKER.parent)}
    single, ddp = tmp_path / "single.pt", tmp_path / "ddp.pt"
    subprocess.run([sys.executable, str(WORKER), str(single), "8"], check=True, env=env, capture_output=True)
    cmd = LAUNCHERS[launcher](_free_port()) + [str(WORKER), str(ddp), "4"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = torch.load(single), torch.load(ddp)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-6, msg=name)
