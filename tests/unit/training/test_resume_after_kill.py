"""Resume after SIGKILL: a killed training process, rerun, ends with bitwise the weights of an
uninterrupted run (CPU, one thread), and a half-written ``*.tmp`` checkpoint is never loaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from exemplar.training.checkpoints import list_checkpoints, load_checkpoint
from tests.conftest import PROJECT_ROOT
from tests.unit.training import resume_worker


def _start_worker(directory: Path, pause: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.unit.training.resume_worker", str(directory), str(pause)]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_after_checkpoint(process: subprocess.Popen, checkpoint: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        assert process.poll() is None, process.communicate()[0].decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _uninterrupted_weights(directory: Path) -> dict:
    threads = torch.get_num_threads()
    try:
        resume_worker.run(directory, pause=0.0)  # sets one thread, like the worker process
    finally:
        torch.set_num_threads(threads)
    return load_checkpoint(directory / "final.pt")["model"]


def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    expected = _uninterrupted_weights(tmp_path / "reference")
    killed = tmp_path / "killed"
    process = _start_worker(killed, pause=0.5)
    _kill_after_checkpoint(process, killed / "checkpoints" / "epoch_0002.pt")
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "final.pt").exists()
    done = [load_checkpoint(p)["epoch"] for p in list_checkpoints(killed / "checkpoints")]
    assert 2 <= done[-1] < resume_worker.CONFIG.epochs
    (killed / "checkpoints" / f"epoch_{done[-1] + 1:04d}.pt.tmp").write_bytes(b"half a checkpoint")

    rerun = _start_worker(killed, pause=0.0)
    output = rerun.communicate(timeout=120)[0].decode()
    assert rerun.returncode == 0, output

    resumed = load_checkpoint(killed / "final.pt")["model"]
    assert resumed.keys() == expected.keys()
    for name in expected:
        assert torch.equal(resumed[name], expected[name]), name
