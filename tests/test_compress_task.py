"""The compress stage's tasks on a tiny run (300 digits, 3 epochs): a population of 2 and of 1."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from tasks.compress import compress, compress_seed
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.layout import RunLayout
from tasks.run import standalone_tracking
from tasks.train import train

SMALL = {"sparsities": [0.5, 0.9], "finetune_epochs": 1, "calibration_rows": 16, "latency_repeats": 1}


def configured(tiny_cfg: dict, population: int, **compress_changes) -> dict:
    cfg = copy.deepcopy(tiny_cfg)
    cfg["train"]["population"] = population
    cfg["compress"].update(SMALL, **compress_changes)
    return cfg


@pytest.fixture(scope="module")
def trained_run(tiny_cfg, tmp_path_factory):
    """A run directory with the data, the mask and two trained seeds."""
    torch.set_num_threads(1)
    run_dir = str(tmp_path_factory.mktemp("compress"))
    cfg = configured(tiny_cfg, 2)
    track = standalone_tracking(cfg)
    ingest.fn(cfg, run_dir, track)
    filter_rows.fn(cfg, run_dir, track)
    for seed in (0, 1):
        train.fn(cfg, run_dir, track, seed=seed)
    return run_dir


@pytest.fixture(scope="module")
def population_of_two(trained_run, tiny_cfg):
    cfg = configured(tiny_cfg, 2)
    for seed in (0, 1):
        compress_seed.fn(cfg, trained_run, seed)
    return cfg, compress.fn(cfg, trained_run, standalone_tracking(cfg))


def test_scores_are_keyed_by_id_with_one_fused_score(trained_run, population_of_two):
    layout = RunLayout(trained_run)
    scores = pd.read_parquet(layout.compression_scores)
    dataset = pd.read_parquet(layout.dataset)
    assert scores["id"].is_unique and set(scores["id"]) == set(dataset["id"])
    tags = ["p50", "p90", "int8_dynamic", "int8_static"]
    assert {f"is_cie_{t}" for t in tags} | {f"cie_score_{t}" for t in tags} <= set(scores.columns)
    assert [c for c in scores.columns if c.endswith("_score")] == ["cie_score"]
    assert np.allclose(scores["cie_score"], scores[[f"cie_score_{t}" for t in tags]].max(axis=1))


def test_results_per_model_and_per_level(trained_run, population_of_two):
    _, summary = population_of_two
    layout = RunLayout(trained_run)
    models = pd.read_parquet(layout.compression_results)
    assert len(models) == 2 * 5 and set(models["seed"]) == {0, 1}
    assert {"test_accuracy", "size_bytes", "latency_ms", "class_accuracy_0", "class_accuracy_9"} <= set(models.columns)
    assert models.loc[models["level"] == "p90", "achieved_sparsity"].tolist() == pytest.approx([0.9, 0.9], abs=1e-4)
    written = json.loads(layout.stage_metrics("compress").read_text())
    assert written == json.loads(json.dumps(summary))
    assert summary["population"] == 2 and summary["note"] == ""
    level = summary["levels"]["p90"]
    assert 0.0 <= level["cie_fraction"] <= 1.0 and len(level["class_impact"]) == 10
    assert level["per_layer_sparsity"]["global"] == pytest.approx(0.9, abs=1e-4)
    static = summary["levels"]["int8_static"]
    assert len(static["quantized_layers"]) == 5 and static["float_layers"] == {}
    assert set(summary["levels"]["int8_dynamic"]["float_layers"]) == {"backbone.features.0", "backbone.features.2", "backbone.features.5"}


def test_a_rerun_reuses_current_seed_outputs(trained_run, population_of_two):
    cfg, _ = population_of_two
    record = RunLayout(trained_run).compressed_root / "seed_0" / "models.json"
    before = record.stat().st_mtime_ns
    compress.fn(cfg, trained_run, standalone_tracking(cfg))
    assert record.stat().st_mtime_ns == before


def test_population_of_one_is_dense_vs_compressed_flips(trained_run, tiny_cfg):
    cfg = configured(tiny_cfg, 1, sparsities=[0.9], quantization=[])
    summary = compress.fn(cfg, trained_run, standalone_tracking(cfg))
    layout = RunLayout(trained_run)
    assert summary["population"] == 1 and "population of 1" in summary["note"]
    assert set(summary["levels"]) == {"p90"}  # the stale seed-0 outputs (other settings) were recomputed
    predictions = pd.read_parquet(layout.compressed_root / "seed_0" / "predictions.parquet")
    scores = pd.read_parquet(layout.compression_scores)
    flips = (predictions["pred_dense"] != predictions["pred_p90"]).to_numpy()
    assert (scores["is_cie_p90"].to_numpy() == flips).all()
    assert set(scores["cie_score"].unique()) <= {0.0, 2.0}
    assert all(row["p_value"] is None for row in summary["levels"]["p90"]["class_impact"])  # NaN -> null in JSON
