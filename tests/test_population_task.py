"""The population tasks on a tiny run: the seeds as one ensemble write what the per-seed task writes,
and the cross-fitted models hold out what their folds say."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from exemplar.training.checkpoints import list_checkpoints, load_checkpoint
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.layout import RunLayout
from tasks.population import crossfit_seeds, rows_digest, train_crossfit, train_seeds
from tasks.run import standalone_tracking
from tasks.train import train


@pytest.fixture(scope="module")
def run(tiny_cfg, tmp_path_factory):
    torch.set_num_threads(1)
    cfg = copy.deepcopy(tiny_cfg)
    cfg["train"].update(population=2, epochs=2, checkpoint_every=1, crossfit_folds=2, crossfit_repeats=2)
    run_dir = str(tmp_path_factory.mktemp("population"))
    track = standalone_tracking(cfg)
    ingest.fn(cfg, run_dir, track)
    filter_rows.fn(cfg, run_dir, track)
    return cfg, run_dir, track, train_seeds.fn(cfg, run_dir, track), train_crossfit.fn(cfg, run_dir, track)


def test_ensemble_seeds_write_the_per_seed_outputs(run):
    cfg, run_dir, _, seeds, _ = run
    layout = RunLayout(run_dir)
    assert [s["seed"] for s in seeds["seeds"]] == [0, 1] and seeds["seeds"][0]["ensemble_size"] == 2
    for seed in (0, 1):
        assert [p.name for p in list_checkpoints(layout.checkpoints(seed))] == ["epoch_0001.pt", "epoch_0002.pt"]
        dynamics = pd.read_parquet(layout.dynamics(seed) / "epoch_0002.parquet")
        assert list(dynamics.columns) == ["id", "epoch", "correct", "label_probability"] and len(dynamics) == seeds["seeds"][0]["train_rows"]
        assert json.loads(layout.stage_metrics(f"train_seed{seed}").read_text())["seed"] == seed


def test_the_per_seed_task_recognises_ensemble_checkpoints_as_its_own(run):
    """Same fingerprint and manifest entry: the per-seed task finds seed 0 complete and trains no epoch."""
    cfg, run_dir, track, seeds, _ = run
    folder = RunLayout(run_dir).checkpoints(0)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    summary = train.fn(cfg, run_dir, track, seed=0)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert summary == seeds["seeds"][0]


def test_crossfit_models_train_on_their_fold_complements(run):
    cfg, run_dir, _, _, crossfit = run
    layout = RunLayout(run_dir)
    assert crossfit["members"] == 4 and crossfit["seeds"] == crossfit_seeds(cfg) == [2, 3, 4, 5]
    folds = pd.read_parquet(layout.crossfit_folds)
    dataset = pd.read_parquet(layout.dataset)
    train_ids = dataset.loc[dataset["split"] == "train", "id"]
    assert set(folds["id"]) == set(train_ids) and len(folds) == 2 * len(train_ids)
    for j in range(4):
        (path,) = list_checkpoints(layout.crossfit_checkpoints(j))  # the final epoch only
        meta = load_checkpoint(path)["meta"]["crossfit"]
        repeat = folds[folds["repeat"] == meta["repeat"]].set_index("id").reindex(train_ids)
        trained = train_ids[(repeat["fold"] != meta["fold"]).to_numpy()].to_numpy(dtype=object)
        assert meta["rows_digest"] == rows_digest(trained) and meta["seed"] == crossfit["seeds"][j]
    assert np.isclose(sum(crossfit["rows_per_member"]), 2 * len(train_ids))
