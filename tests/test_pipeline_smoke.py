"""End to end: the whole Prefect DAG on a shrunk config, under prefect_test_harness."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from flows.pipeline import pipeline_flow

REQUIRED = ["id", "split", "label", "pred", "loss_score", "margin_score", "el2n_score", "audit_score", "audit_rank"]


@pytest.fixture(scope="module")
def finished_run(prefect_server, tiny_cfg, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = pipeline_flow(tiny_cfg, str(run_dir))
    return run_dir, result


def test_every_output_is_written(finished_run):
    run_dir, _ = finished_run
    for name in ["dataset.parquet", "scores.parquet", "report.html", "report.json", "metrics.json", "keep.parquet"]:
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "checkpoints" / "seed_0").glob("epoch_*.pt"))
    assert not list(run_dir.rglob("*.tmp")), "temporary files left behind"


def test_scores_have_one_row_per_example_keyed_by_id(finished_run):
    run_dir, _ = finished_run
    scores = pd.read_parquet(run_dir / "scores.parquet")
    dataset = pd.read_parquet(run_dir / "dataset.parquet")
    assert set(REQUIRED) <= set(scores.columns)
    assert scores["id"].is_unique and set(scores["id"]) == set(dataset["id"])
    is_test = scores["split"] == "test"  # training and test rows are ranked separately
    assert sorted(scores.loc[~is_test, "audit_rank"]) == list(range(1, int((~is_test).sum()) + 1))
    assert sorted(scores.loc[is_test, "audit_rank_test"]) == list(range(1, int(is_test.sum()) + 1))
    assert scores.loc[is_test, "audit_rank"].isna().all() and scores.loc[~is_test, "audit_rank_test"].isna().all()
    assert {"oos_confidence_score", "oos_margin_score", "label_issue_score", "is_label_issue"} <= set(scores.columns)
    # the default label evidence: the two held-out confidences averaged, on every row that has either
    held_out = scores[["oos_confidence_score", "population_confidence_score"]]
    assert np.allclose(scores["ensemble_confidence_score"], held_out.mean(axis=1), equal_nan=True)
    assert scores.loc[held_out.notna().any(axis=1), "ensemble_confidence_score"].notna().all()


def test_report_is_self_contained_with_inline_thumbnails(finished_run):
    run_dir, _ = finished_run
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", html), "report must not load external resources"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["review_queue"][0]["audit_rank"] == 1


def test_metrics_and_mlflow_runs(finished_run):
    run_dir, result = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["headline"]["test_accuracy"] <= 1.0
    client = MlflowClient()
    parent = client.get_run(result["mlflow_run_id"])
    assert parent.data.tags["dataset_hash"] == metrics["headline"]["dataset_hash"]
    assert "git_commit" in parent.data.tags
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    stages = {run.data.tags["exemplar.stage"] for run in children}
    assert {"ingest", "filter", "score", "compress", "report"} <= stages
    train = next(r for r in children if r.data.tags["mlflow.runName"].startswith("train"))
    history = client.get_metric_history(train.info.run_id, "train_loss")
    assert len(history) == 3, "one train_loss entry per epoch"
