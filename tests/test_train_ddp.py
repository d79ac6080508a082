"""The real entry point under torchrun: ``torchrun --nproc_per_node 2 -m flows.train`` trains with DDP
(gloo on CPU); rank 0 alone writes the checkpoints, dynamics and metrics, and both ranks end with the
same weights. Slow (two processes import the whole stack): run with ``pytest -m slow``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from exemplar.data.canonical import to_arrow
from exemplar.data.digits import load_digits_dataset
from exemplar.training.checkpoints import list_checkpoints, load_checkpoint
from tasks._io import read_json, write_parquet
from tasks.layout import RunLayout
from tests.conftest import PROJECT_ROOT


@pytest.mark.slow
def test_torchrun_trains_the_stage_with_ddp(tmp_path):
    layout = RunLayout(tmp_path / "run")
    dataset = load_digits_dataset(limit=120)
    write_parquet(to_arrow(dataset), layout.dataset)
    write_parquet(pd.DataFrame({"id": dataset.table["id"], "keep": True}), layout.keep)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "flows.train",
        f"out_dir={layout.root}", "data.limit=120", "train=fast", "train.batch_size=16",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, text=True, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output = process.communicate(timeout=300)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert process.returncode == 0, output

    summary = read_json(layout.stage_metrics("train_seed0"))
    assert summary["world_size"] == 2 and len(set(summary["rank_weight_digests"])) == 1
    assert [load_checkpoint(p)["epoch"] for p in list_checkpoints(layout.checkpoints(0))] == [1, 2, 3]
    dynamics = pd.read_parquet(layout.dynamics(0) / "epoch_0003.parquet")
    assert len(dynamics) == summary["train_rows"] and dynamics["label_probability"].gt(0).all()
    assert sum(line.startswith("train ") for line in output.splitlines()) == 1  # the stage's line is printed once, by rank 0
