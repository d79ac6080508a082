"""The train flow under Prefect: a population of seeds, one task each, on the configured runner."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from exemplar.data.canonical import to_arrow
from exemplar.data.digits import load_digits_dataset
from exemplar.training.checkpoints import latest_checkpoint, load_checkpoint
from flows.train import train_flow
from tasks._io import write_parquet
from tasks.layout import RunLayout


@pytest.mark.slow
def test_population_trains_one_model_per_seed(tmp_path, tiny_cfg, prefect_server):
    cfg = {**tiny_cfg, "train": {**tiny_cfg["train"], "population": 2, "epochs": 1}, "runner": {"name": "threads", "max_workers": 1}}
    layout = RunLayout(tmp_path)
    dataset = load_digits_dataset(limit=int(cfg["data"]["limit"]))
    write_parquet(to_arrow(dataset), layout.dataset)
    write_parquet(pd.DataFrame({"id": dataset.table["id"], "keep": True}), layout.keep)
    result = train_flow(cfg, str(tmp_path))
    assert [s["seed"] for s in result["seeds"]] == [0, 1]
    first, second = (load_checkpoint(latest_checkpoint(layout.checkpoints(seed)))["model"] for seed in (0, 1))
    assert any(not torch.equal(first[name], second[name]) for name in first)
