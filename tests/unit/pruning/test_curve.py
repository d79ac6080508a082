"""The pruning curve's points, table, summary and plot; the proxy and prototype scores on tiny data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from exemplar.models.factory import ModelConfig
from exemplar.pruning.config import CurveConfig, PruneConfig
from exemplar.pruning.curve import compare_at, curve_points, curve_table, plot_curve, point_epochs, score_lines, summarise
from exemplar.pruning.prototypes import prototype_score
from exemplar.pruning.proxy import ProxyData, proxy_scores
from exemplar.training.config import TrainConfig


def test_points_share_the_full_data_run_and_directions_apply_where_they_matter():
    config = CurveConfig(fractions=[1.0, 0.5], scores=["random", "el2n", "audit_score"], seeds=[0, 1])
    assert score_lines(config) == [("random", "random"), ("el2n", "hard"), ("el2n", "easy"), ("audit", "drop_top")]
    points = curve_points(config)
    assert len(points) == 2 + 4 * 2
    assert [p.score for p in points[:2]] == ["full", "full"]


def test_point_epochs_hold_the_steps_fixed():
    assert point_epochs(10, 1000, 1000, 100, "steps") == 10
    assert point_epochs(10, 1000, 500, 100, "steps") == 20
    assert point_epochs(10, 1000, 500, 100, "epochs") == 10


def _records() -> list[dict]:
    records = [{"score": "full", "direction": "none", "fraction_kept": 1.0, "seed": s, "test_accuracy": 0.9, "n_train": 100,
                "test_loss": 0.3, "train_seconds": 1.0} for s in (0, 1)]
    for score, direction, accuracy in (("random", "random", 0.8), ("el2n", "hard", 0.7), ("el2n", "easy", 0.85)):
        records += [{"score": score, "direction": direction, "fraction_kept": 0.5, "seed": s, "test_accuracy": accuracy + 0.01 * s,
                     "n_train": 50, "test_loss": 0.5, "train_seconds": 0.5} for s in (0, 1)]
    return records


def test_table_summary_comparison_and_plot(tmp_path):
    config = CurveConfig(fractions=[1.0, 0.5], scores=["random", "el2n"], seeds=[0, 1])
    table = curve_table(_records(), config)
    assert len(table) == 3 * 2 * 2 and table["is_shared_full_run"].sum() == 6
    summary = summarise(table)
    row = summary[(summary["score"] == "el2n") & (summary["direction"] == "easy") & (summary["fraction_kept"] == 0.5)].iloc[0]
    assert np.isclose(row["mean"], 0.855) and np.isclose(row["std"], np.std([0.85, 0.86], ddof=1)) and row["seeds"] == 2
    compared = compare_at(summary, 0.5)
    assert compared["best"]["direction"] == "easy" and np.isclose(compared["best"]["minus_random"], 0.05)
    plot_curve(table, [tmp_path / "c.svg", tmp_path / "c.png"])
    assert (tmp_path / "c.svg").read_text().startswith("<?xml") and (tmp_path / "c.png").stat().st_size > 1000


def test_prototype_score_is_the_distance_to_the_nearest_centroid():
    embeddings = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99], [0.7, 0.7]])
    score = prototype_score(embeddings, 2)
    assert score.argmax() == 4 and (score >= 0).all()


def test_proxy_scores_every_requested_name(tmp_path):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(60, 5)).astype(np.float32))
    y = torch.from_numpy((x[:, 0] > 0).numpy().astype(np.int64))
    data = ProxyData(np.array([f"r{i}" for i in range(60)], dtype=object), x, y, "table", (5,), 2)
    train = TrainConfig(batch_size=16, epochs=3)
    names = ["el2n", "grand", "forgetting", "self_influence", "prototype", "audit"]
    scores = proxy_scores(data, names, ModelConfig(), train, PruneConfig(proxy_epochs=3, proxy_seeds=2))
    assert scores.columns.tolist() == ["id", "el2n_score", "grand_score", "self_influence_score", "forgetting_score", "prototype_score", "audit_score"]
    assert len(scores) == 60 and scores.drop(columns="id").notna().all().all()
