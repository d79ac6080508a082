"""The score task on a real (tiny) run directory: ingest -> filter -> train (population 2) -> score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exemplar.scoring.config import DEFAULT_SIGNALS
from tasks.crossfit import combine, crossfit_fold
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.layout import RunLayout
from tasks.score import score
from tasks.train import train


@pytest.fixture(scope="module")
def scored_run(tiny_cfg, tmp_path_factory, isolated_tracking):
    cfg = {**tiny_cfg, "train": {**tiny_cfg["train"], "population": 2}, "score": {**tiny_cfg["score"], "influence_top_k": 3}}
    run_dir = str(tmp_path_factory.mktemp("scored"))
    track = {"uri": isolated_tracking, "experiment": "score-task", "parent_run_id": None}
    ingest.fn(cfg, run_dir, track)
    filter_rows.fn(cfg, run_dir, track)
    for seed in (0, 1):
        train.fn(cfg, run_dir, track, seed=seed)
    folds = [crossfit_fold.fn(cfg, run_dir, fold) for fold in range(cfg["score"]["oos"]["folds"])]  # as flows/score.py
    summary = score.fn(cfg, run_dir, track, combine(cfg, run_dir, folds))
    return RunLayout(run_dir), summary


def test_every_signal_is_written_keyed_by_id(scored_run):
    layout, summary = scored_run
    scores = pd.read_parquet(layout.signal_scores)
    dataset = pd.read_parquet(layout.dataset)
    assert scores["id"].tolist() == dataset["id"].tolist()
    assert [c for c in scores.columns if c.endswith("_score")] == [f"{n}_score" for n in DEFAULT_SIGNALS]
    assert scores["is_label_issue"].dtype == bool and scores["oos_confidence_score"].between(0, 1).all()
    is_train = (dataset["split"] == "train").to_numpy()
    assert scores.loc[is_train, "forgetting_score"].notna().all()
    assert scores.loc[~is_train, "forgetting_score"].isna().all()
    assert summary["seeds"] == 2 and summary["learning_rates"][0] > 0


def test_influence_topk_lists_training_rows_for_each_test_row(scored_run):
    layout, _ = scored_run
    table = pd.read_parquet(layout.influence_topk)
    dataset = pd.read_parquet(layout.dataset)
    assert list(table.columns) == ["test_id", "train_id", "kind", "rank", "influence", "variant"]
    assert set(table["test_id"]) == set(dataset.loc[dataset["split"] == "test", "id"])
    assert set(table["train_id"]) <= set(dataset.loc[dataset["split"] == "train", "id"])
    counts = table.groupby(["test_id", "variant", "kind"]).size()
    assert (counts == 3).all()
    proponents = table[(table["kind"] == "proponent") & (table["variant"] == "dot")]
    assert np.all(np.diff(proponents["influence"].to_numpy().reshape(-1, 3), axis=1) <= 0)
