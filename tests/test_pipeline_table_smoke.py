"""End to end on a table like a real export: text, high-cardinality and boolean columns, missing
values, an all-missing and a constant column, a mistyped label. Every row is scored (none quarantined for
a gap), the original values stay in dataset.parquet, and the model sees the encoded, wider input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from exemplar.data.synthetic import CLASS_ORDER, loan_applications, plant_adjacent_flips
from flows.cli import load_config
from flows.pipeline import pipeline_flow
from tests.conftest import TINY_OVERRIDES


@pytest.fixture(scope="module")
def table_run(prefect_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    table, _ = plant_adjacent_flips(loan_applications(rows=300, seed=0), 0.1, seed=0, order=CLASS_ORDER["loans"])
    table["notes"] = pd.Series([None] * len(table), dtype=object)  # all missing: a warning, not a crash
    table["form_version"] = 2  # constant: a warning, not a crash
    table.loc[7, "label"] = "aprove"  # a mistyped label, the only row of its class: kept in training and audited
    table.to_parquet(root / "loans.parquet", index=False)
    overrides = ["data=parquet", f"data.path={root / 'loans.parquet'}", *TINY_OVERRIDES, "train.population=1", "compress.sparsities=[0.9]"]
    run_dir = root / "run"
    pipeline_flow(load_config(overrides), str(run_dir))
    return run_dir, table


def test_every_row_is_scored_and_rows_with_gaps_are_not_quarantined(table_run):
    run_dir, table = table_run
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert len(pd.read_parquet(run_dir / "quarantine.parquet")) == 0
    assert set(scores["id"]) == set(table["id"])
    gappy = table.loc[table.drop(columns=["notes"]).isna().any(axis=1), "id"]
    assert len(gappy) > 20 and gappy.isin(scores["id"]).all()
    for column in ("audit_score", "input_outlier_score", "loss_score"):
        assert np.isfinite(scores[column]).all(), column


def test_a_one_row_class_is_trained_on_and_heads_the_queue(table_run):
    """The typo'd row cannot be split, so it trains; its out-of-fold learner never saw the class, so every
    out-of-sample signal is at its maximum and the row is near the top of the review queue."""
    run_dir, table = table_run
    typo = table.loc[7, "id"]
    ingest = json.loads((run_dir / "stages" / "ingest.json").read_text())
    assert ingest["train_only_classes"] == ["aprove"] and ingest["rows_per_class"]["aprove"] == 1
    scores = pd.read_parquet(run_dir / "scores.parquet").set_index("id")
    assert scores.loc[typo, "split"] == "train" and scores.loc[typo, "oos_confidence_score"] == 1.0
    assert scores.loc[typo, "audit_rank"] <= 0.05 * (scores["split"] == "train").sum()


def test_dataset_keeps_the_original_values(table_run):
    run_dir, table = table_run
    stored = pd.read_parquet(run_dir / "dataset.parquet").set_index("id")
    given = table.set_index("id").loc[stored.index]
    assert stored["region"].tolist() == given["region"].tolist()
    assert stored["income"].isna().tolist() == given["income"].isna().tolist()
    assert stored["employment"].isna().tolist() == given["employment"].isna().tolist()


def test_ingest_warns_about_columns_that_carry_nothing(table_run):
    run_dir, _ = table_run
    ingest = json.loads((run_dir / "stages" / "ingest.json").read_text())
    warned = {(w["column"], w["problem"]) for w in ingest["column_warnings"]}
    assert warned == {("notes", "all_missing"), ("form_version", "constant")}
    assert ingest["feature_types"]["region"] == "categorical" and ingest["feature_types"]["has_mortgage"] == "boolean"
    assert ingest["rows_with_missing_values"] == ingest["rows"]  # every row has a gap (notes)


def test_the_model_sees_the_encoded_table(table_run):
    run_dir, _ = table_run
    checkpoint = torch.load(sorted((run_dir / "checkpoints" / "seed_0").glob("epoch_*.pt"))[-1], weights_only=True)
    width = checkpoint["meta"]["input_shape"][0]
    assert width > 11  # 9 informative columns, one-hot and missing indicators widen them; notes/form_version dropped


def test_the_ensemble_learner_fits_each_base_learner_on_its_own_view_of_the_table(table_run):
    """score.oos.learner=hgb+logistic on the run: hgb reads the native frame (text, gaps), logistic the
    encoded inputs, and the fold's probabilities are their mean (the fold task as flows/score.py calls it)."""
    from tasks.crossfit import crossfit_fold

    run_dir, _ = table_run
    fold = {learner: crossfit_fold.fn(load_config([f"score.oos.learner={learner}"]), str(run_dir), 0)
            for learner in ("hgb", "logistic", "hgb+logistic")}
    np.testing.assert_allclose(fold["hgb+logistic"], (fold["hgb"] + fold["logistic"]) / 2)
    assert not np.allclose(fold["hgb"], fold["logistic"])
