"""Pruning in the filter stage on a real (tiny) run folder, its errors before any training, and the
pruning-curve flow on a tiny config (2 fractions x 2 scores x 1 seed) under the Prefect test server."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from exemplar.errors import ExemplarError
from flows.cli import load_config
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.layout import RunLayout
from tests.conftest import TINY_OVERRIDES

PROXY = ["prune.proxy_epochs=2", "prune.proxy_seeds=1"]


@pytest.fixture(scope="module")
def ingested(tiny_cfg, tmp_path_factory, isolated_tracking):
    run_dir = str(tmp_path_factory.mktemp("pruned"))
    track = {"uri": isolated_tracking, "experiment": "prune-task", "parent_run_id": None}
    ingest.fn(tiny_cfg, run_dir, track)
    return run_dir, track


def _cfg(*overrides: str) -> dict:
    return load_config([*TINY_OVERRIDES, *PROXY, *overrides])


def test_filter_prunes_half_of_each_class_by_a_proxy_score(ingested):
    run_dir, track = ingested
    summary = filter_rows.fn(_cfg("prune.fraction_kept=0.5", "prune.score=el2n", "prune.keep=hard"), run_dir, track)
    layout = RunLayout(run_dir)
    mask = pd.read_parquet(layout.keep)
    table = pd.read_parquet(layout.dataset)
    train = (table["split"] == "train").to_numpy()
    candidates = train & ~mask["drop_reason"].isin(["exact_duplicate", "near_duplicate"]).to_numpy()
    pruned = (mask["drop_reason"] == "pruned_el2n_hard").to_numpy()
    assert summary["pruning"]["kept"] == round(0.5 * candidates.sum()) == (candidates & mask["keep"].to_numpy()).sum()
    assert not (pruned & ~train).any(), "test rows are never pruned"
    kept = table.loc[mask["keep"].to_numpy() & train, "label"].value_counts()
    total = table.loc[candidates, "label"].value_counts()
    assert ((kept - total / 2).abs() <= 1).all(), "every class keeps half"
    # hard: every kept row of a class scores at least as high as every pruned row of that class
    for label in total.index:
        rows = table["label"].to_numpy() == label
        assert mask.loc[rows & mask["keep"].to_numpy() & train, "prune_value"].min() >= mask.loc[rows & pruned, "prune_value"].max()
    assert json.loads((layout.stage_metrics("filter")).read_text())["dropped_by_reason"]["pruned_el2n_hard"] == pruned.sum()


def test_scores_from_an_earlier_run_and_missing_ids(ingested, tmp_path):
    run_dir, track = ingested
    table = pd.read_parquet(RunLayout(run_dir).dataset)
    path = tmp_path / "scores.parquet"
    pd.DataFrame({"id": table["id"], "audit_score": np.arange(len(table), dtype=float)}).to_parquet(path)
    summary = filter_rows.fn(_cfg("prune.count_kept=100", "prune.score=audit", "prune.keep=drop_top", f"prune.scores_from={path}"), run_dir, track)
    assert summary["pruning"]["kept"] == 100 and summary["pruning"]["source"] == str(path)
    pd.DataFrame({"id": table["id"][5:], "audit_score": 1.0}).to_parquet(path)
    with pytest.raises(ExemplarError, match=r"has no audit_score for .* training row"):
        filter_rows.fn(_cfg("prune.fraction_kept=0.5", "prune.score=audit", f"prune.scores_from={path}"), run_dir, track)


@pytest.mark.parametrize(
    "override, message",
    [
        ("prune.fraction_kept=0", "fraction_kept must lie in"),
        ("prune.fraction_kept=1.2", "fraction_kept must lie in"),
        ("prune.score=nonsense", "not a known score"),
        ("prune.curve.budget=hours", "prune.curve.budget must be one of"),
    ],
)
def test_impossible_requests_fail_when_the_config_is_loaded(override, message):
    with pytest.raises(ExemplarError, match=message):
        _cfg(override)


def test_an_emptied_class_fails_in_the_filter_before_training(ingested):
    run_dir, track = ingested
    cfg = _cfg("prune.count_kept=3", "prune.min_per_class=1", "prune.score=random")
    with pytest.raises(ExemplarError, match="min_per_class=1 over 10 classes needs 10"):
        filter_rows.fn(cfg, run_dir, track)
    assert not (RunLayout(run_dir).checkpoints_root).exists()


def test_curve_flow_on_a_tiny_config(prefect_server, tmp_path):
    from flows.prune_curve import prune_curve_flow

    cfg = _cfg("prune.curve.fractions=[1.0,0.5]", "prune.curve.scores=[random,el2n]", "prune.curve.seeds=[0]",
               "prune.curve.directions=[easy]", "prune.curve.epochs=2")
    result = prune_curve_flow(cfg, str(tmp_path))
    table = pd.read_parquet(tmp_path / "prune_curve.parquet")
    assert {"score", "direction", "fraction_kept", "seed", "test_accuracy", "n_train"} <= set(table.columns)
    assert sorted(zip(table["score"], table["fraction_kept"])) == [("el2n", 0.5), ("el2n", 1.0), ("random", 0.5), ("random", 1.0)]
    assert table["test_accuracy"].between(0, 1).all()
    full = table[table["fraction_kept"] == 1.0]
    assert full["is_shared_full_run"].all() and full["test_accuracy"].nunique() == 1
    half = table[table["fraction_kept"] == 0.5]["n_train"]
    assert (half < full["n_train"].iloc[0]).all()
    assert (tmp_path / "prune_curve.svg").stat().st_size > 0 and (tmp_path / "prune_curve.png").stat().st_size > 0
    assert result["points_trained"] == 3 and "0.5" in result["compare"]
    client = MlflowClient()
    parent = client.get_run(result["mlflow_run_id"])
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    names = {run.info.run_name for run in children}
    assert {"point-full-none-f1-s0", "point-random-random-f0.5-s0", "point-el2n-easy-f0.5-s0"} <= names


def test_curve_scores_take_what_the_file_holds_and_the_rest_from_the_proxy(ingested, tmp_path):
    from tasks.datasets import read_dataset
    from tasks.filter import pruning_scores

    run_dir, _ = ingested
    dataset = read_dataset(RunLayout(run_dir).dataset)
    path = tmp_path / "scores.parquet"
    pd.DataFrame({"id": dataset.table["id"], "audit_score": np.arange(len(dataset.table), dtype=float)}).to_parquet(path)
    mask = pd.DataFrame({"id": dataset.table["id"], "keep": True})
    scores = pruning_scores(_cfg(f"prune.scores_from={path}"), dataset, mask, ["audit", "el2n", "random"], 0, from_file_only=False)
    train = dataset.table[dataset.table["split"] == "train"]
    assert scores.index.tolist() == train["id"].tolist()
    assert (scores["audit_score"].to_numpy() == train.index.to_numpy()).all()
    assert scores["el2n_score"].notna().all() and scores["random_score"].between(0, 1).all()
