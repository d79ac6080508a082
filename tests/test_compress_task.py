"""The compress stage's task on a tiny run (300 digits, 3 epochs): a cross-fitted population of 2 folds
x 2 repeats (4 models; every training row held out by 2 of them, every test row by all 4)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from exemplar.errors import ExemplarError
from tasks.compress import compress, population_data, _checkpoints
from exemplar.compression.config import CompressConfig
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.layout import RunLayout
from tasks.population import train_crossfit
from tasks.run import standalone_tracking

SMALL = {"sparsities": [0.5, 0.9], "finetune_epochs": 1, "calibration_rows": 16, "latency_repeats": 1}


def configured(tiny_cfg: dict, repeats: int = 2, **compress_changes) -> dict:
    cfg = copy.deepcopy(tiny_cfg)
    cfg["train"].update(crossfit_repeats=repeats, crossfit_folds=2)
    cfg["compress"].update(SMALL, **compress_changes)
    return cfg


@pytest.fixture(scope="module")
def trained_run(tiny_cfg, tmp_path_factory):
    """A run directory with the data, the mask and the cross-fitted population."""
    torch.set_num_threads(1)
    run_dir = str(tmp_path_factory.mktemp("compress"))
    cfg = configured(tiny_cfg)
    track = standalone_tracking(cfg)
    ingest.fn(cfg, run_dir, track)
    filter_rows.fn(cfg, run_dir, track)
    train_crossfit.fn(cfg, run_dir, track)
    return run_dir


@pytest.fixture(scope="module")
def population(trained_run, tiny_cfg):
    cfg = configured(tiny_cfg)
    return cfg, compress.fn(cfg, trained_run, standalone_tracking(cfg))


def test_scores_are_keyed_by_id_with_one_fused_score(trained_run, population):
    layout = RunLayout(trained_run)
    scores = pd.read_parquet(layout.compression_scores)
    dataset = pd.read_parquet(layout.dataset)
    assert scores["id"].is_unique and set(scores["id"]) == set(dataset["id"])
    tags = ["p50", "p90", "int8_dynamic", "int8_static"]
    assert {f"is_cie_{t}" for t in tags} | {f"cie_score_{t}" for t in tags} <= set(scores.columns)
    assert [c for c in scores.columns if c.endswith("_score")] == ["cie_score", "population_confidence_score"]
    assert np.allclose(scores["cie_score"], scores[[f"cie_score_{t}" for t in tags]].max(axis=1))
    is_test = (dataset.set_index("id").loc[scores["id"], "split"] == "test").to_numpy()
    assert (scores.loc[is_test, "oos_models"] == 4).all() and (scores.loc[~is_test, "oos_models"] >= 2).all()


def test_held_out_models_never_trained_on_the_row(trained_run, population):
    """The held-out mask of every model is the complement of the rows its checkpoint says it trained on."""
    cfg, _ = population
    layout = RunLayout(trained_run)
    checkpoints = _checkpoints(cfg, layout)
    ids, is_train, data = population_data(layout, CompressConfig(**cfg["compress"]), checkpoints)
    for m, rows in enumerate(data.rows):
        trained = np.zeros(len(ids), dtype=bool)
        trained[rows.numpy()] = True
        assert not (data.held_out[m] & trained).any() and data.held_out[m][~trained].all()
        assert trained[is_train].mean() == pytest.approx(0.5, abs=0.02) and not trained[~is_train].any()
    assert (data.held_out[:, is_train].sum(axis=0) == 2).all()


def test_population_confidence_is_one_minus_the_held_out_models_probability_of_the_label(trained_run, population):
    """Reference loop: for each row, the mean over the models that never trained on it of softmax(model(x))[label]."""
    from exemplar.models.factory import classifier_from_checkpoint

    cfg, _ = population
    layout = RunLayout(trained_run)
    checkpoints = _checkpoints(cfg, layout)
    ids, _, data = population_data(layout, CompressConfig(**cfg["compress"]), checkpoints)
    models = [classifier_from_checkpoint(c) for c in checkpoints]
    rows = np.random.default_rng(0).choice(len(ids), size=12, replace=False)
    with torch.no_grad():
        expected = [1 - np.mean([torch.softmax(m(data.x[r:r + 1]), dim=1)[0, int(data.y[r])].item()
                                 for m, held in zip(models, data.held_out[:, r]) if held]) for r in rows]
    scores = pd.read_parquet(layout.compression_scores).set_index("id")
    np.testing.assert_allclose(scores.loc[ids.to_numpy()[rows], "population_confidence_score"], expected, atol=1e-5)


def test_tampered_folds_are_refused(trained_run, population, tmp_path):
    cfg, _ = population
    layout = RunLayout(trained_run)
    folds = pd.read_parquet(layout.crossfit_folds)
    copy_dir = RunLayout(tmp_path)
    for name in ("dataset.parquet", "keep.parquet"):
        (tmp_path / name).write_bytes((layout.root / name).read_bytes())
    folds.assign(fold=1 - folds["fold"]).to_parquet(copy_dir.crossfit_folds)
    checkpoints = _checkpoints(cfg, layout)
    with pytest.raises(ExemplarError, match="other rows"):
        population_data(copy_dir, CompressConfig(**cfg["compress"]), checkpoints)


def test_results_per_model_and_per_level(trained_run, population):
    _, summary = population
    layout = RunLayout(trained_run)
    models = pd.read_parquet(layout.compression_results)
    assert len(models) == 4 * 5 and set(models["level"]) == {"dense", "p50", "p90", "int8_dynamic", "int8_static"}
    assert {"test_accuracy", "oos_accuracy", "member", "repeat", "fold", "size_bytes", "latency_ms", "class_accuracy_0", "class_accuracy_9"} <= set(models.columns)
    assert models.loc[models["level"] == "p90", "achieved_sparsity"].tolist() == pytest.approx([0.9] * 4, abs=1e-4)
    assert models.loc[models["level"] == "dense", "achieved_sparsity"].tolist() == [0.0] * 4
    written = json.loads(layout.stage_metrics("compress").read_text())
    assert written == json.loads(json.dumps(summary))
    assert summary["population"] == 4 and summary["held_out_models_train_row"] == 2 and summary["held_out_models_test_row"] == 4
    level = summary["levels"]["p90"]
    assert 0.0 <= level["cie_fraction"] <= 1.0 and len(level["class_impact"]) == 10
    assert level["cie_count"] == level["cie_count_train"] + level["cie_count_test"]
    assert len(level["dense_accuracy_gap_all_ci"]) == 2
    assert level["per_layer_sparsity"]["global"] == pytest.approx(0.9, abs=1e-4)
    static = summary["levels"]["int8_static"]
    assert len(static["quantized_layers"]) == 5 and static["float_layers"] == {}
    assert set(summary["levels"]["int8_dynamic"]["float_layers"]) == {"backbone.features.0", "backbone.features.2", "backbone.features.5"}


def test_a_rerun_reuses_current_outputs_and_new_settings_recompute(trained_run, population, tiny_cfg):
    cfg, _ = population
    record = RunLayout(trained_run).compressed_root / "population.json"
    before = record.stat().st_mtime_ns
    compress.fn(cfg, trained_run, standalone_tracking(cfg))
    assert record.stat().st_mtime_ns == before
    changed = configured(tiny_cfg, sparsities=[0.7], quantization=[])
    summary = compress.fn(changed, trained_run, standalone_tracking(changed))
    assert set(summary["levels"]) == {"p70"}
    compress.fn(cfg, trained_run, standalone_tracking(cfg))  # leave the module's outputs as the fixture made them
