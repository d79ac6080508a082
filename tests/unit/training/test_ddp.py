"""DDP on CPU with two gloo processes under torchrun: both ranks end with identical weights, and
the run matches one process training on the same global batches (no dropout, no batch norm)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

from exemplar.training.checkpoints import load_checkpoint
from tests.conftest import PROJECT_ROOT


def _run(arguments: list[str], timeout: float = 90) -> None:
    """Run a command in its own process group, so a timeout also ends the workers torchrun started."""
    process = subprocess.Popen([sys.executable, *arguments], cwd=PROJECT_ROOT, text=True, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output = process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert process.returncode == 0, output


def test_two_gloo_ranks_agree_with_each_other_and_with_one_process(tmp_path):
    worker = ["-m", "tests.unit.training.ddp_worker", str(tmp_path)]
    _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *worker])
    _run(worker)
    rank0, rank1, single = (load_checkpoint(tmp_path / f"rank_{name}.pt") for name in ("0", "1", "single"))
    for name, tensor in rank0["model"].items():
        assert torch.equal(tensor, rank1["model"][name]), name
        assert torch.allclose(tensor, single["model"][name], atol=1e-5), name
    assert rank0["train_loss"] == rank1["train_loss"]
    assert abs(rank0["train_loss"] - single["train_loss"]) < 1e-5
    assert torch.allclose(rank0["label_probability"], single["label_probability"], atol=1e-5)
