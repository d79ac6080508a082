"""Pruning-curve tasks: score the candidates once, train one model per (score, direction, fraction,
seed) point on the rows its policy keeps (each a nested MLflow run), then write the table and plot.

Outputs in the run folder: ``prune_scores.parquet`` (id + every curve score of the candidate rows),
``prune_curve.parquet`` (one row per line, fraction and seed), ``prune_curve.json`` (mean and spread per
point, best score vs random at each fraction), ``prune_curve.svg`` and ``prune_curve.png``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from exemplar.models.classifier import input_statistics
from exemplar.models.factory import ModelConfig, build_classifier
from exemplar.pruning.config import PruneConfig
from exemplar.pruning.curve import FULL, CurvePoint, compare_at, curve_table, plot_curve, point_epochs, summarise
from exemplar.pruning.policy import random_scores
from exemplar.training.config import TrainConfig
from exemplar.training.loop import evaluate, fit
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset, split_rows, tensors
from tasks.filter import candidate_rows, prune_mask, pruning_scores
from tasks.layout import RunLayout

SCORES_FILE = "prune_scores.parquet"
TABLE_FILE = "prune_curve.parquet"
SUMMARY_FILE = "prune_curve.json"
PLOT_FILES = ("prune_curve.svg", "prune_curve.png")


def without_policy(cfg: dict) -> dict:
    """`cfg` with the single-run pruning policy off: the curve applies its own policy per point."""
    return {**cfg, "prune": {**cfg["prune"], "fraction_kept": 1.0, "count_kept": None}}


@stage_task("open-prune-curve-run")
def open_curve_run(cfg: dict, run_dir: str) -> dict:
    """The parent MLflow run every point is nested under; returns the tracking handle."""
    uri, experiment = tracking.tracking_uri(cfg["tracking"]["uri"]), cfg["tracking"]["experiment"]
    run_id = tracking.create_run(uri, experiment, "prune-curve", tags={"out_dir": run_dir, "exemplar.stage": "prune-curve"})
    tracking.log_params(uri, run_id, {"prune": cfg["prune"], "train": cfg["train"], "model": cfg["model"], "data": cfg["data"]})
    return {"uri": uri, "experiment": experiment, "parent_run_id": run_id}


def _read_mask(layout: RunLayout, ids: pd.Series) -> pd.DataFrame:
    """The filter's keep.parquet, aligned with the dataset's row order."""
    return pq.read_table(layout.keep).to_pandas().set_index("id").reindex(ids).reset_index()


@stage_task("prune-curve-scores")
def score_candidates(cfg: dict, run_dir: str, track: dict) -> dict:
    """Every curve score but ``random`` for the candidate rows: those ``prune.scores_from`` holds from it,
    the others from one proxy run."""
    layout = RunLayout(run_dir)
    curve = PruneConfig(**cfg["prune"]).curve_config()
    names = [n for n in curve.scores if n != "random"]
    with tracking.stage_run(track["uri"], track["experiment"], "prune-curve-scores", track["parent_run_id"], {"scores": names}) as run_id:
        dataset = read_dataset(layout.dataset)
        started = time.perf_counter()
        scores = pruning_scores(cfg, dataset, _read_mask(layout, dataset.table["id"]), names, 0, from_file_only=False)
        seconds = time.perf_counter() - started
        write_parquet(scores.reset_index(), layout.root / SCORES_FILE)
        tracking.log_metrics(track["uri"], run_id, {"seconds": seconds, "rows": len(scores)})
    return {"seconds": seconds, "rows": len(scores), "columns": list(scores.columns)}


def point_mask(cfg: dict, layout: RunLayout, point: CurvePoint) -> tuple[object, np.ndarray, int]:
    """(dataset, (N,) bool rows to train on, number of candidate rows) for one point: the filter's mask
    pruned by the point's policy."""
    dataset = read_dataset(layout.dataset)
    mask = _read_mask(layout, dataset.table["id"])
    candidates = candidate_rows(dataset, mask)
    if point.score == FULL:
        return dataset, candidates, int(candidates.sum())
    keep = "hard" if point.direction == "random" else point.direction
    prune = {**cfg["prune"], "fraction_kept": point.fraction_kept, "count_kept": None, "score": point.score, "keep": keep}
    if point.score == "random":
        scores = random_scores(dataset.table["id"].to_numpy()[candidates], point.seed).to_frame()
    else:
        scores = pd.read_parquet(layout.root / SCORES_FILE).set_index("id")
    pruned, _ = prune_mask({**cfg, "prune": prune}, dataset, mask, scores)
    return dataset, candidate_rows(dataset, pruned), int(candidates.sum())


def train_and_test(cfg: dict, dataset, rows: np.ndarray, seed: int, epochs: int) -> dict:
    """Train a fresh model (seeded) on `rows` for `epochs` epochs; test accuracy on every test row."""
    config = replace(TrainConfig(**cfg["train"]), epochs=epochs, seed=seed, population=1, checkpoint_epochs=[])
    x, y = tensors(dataset)
    train = torch.from_numpy(rows)
    test = torch.from_numpy(split_rows(dataset, "test"))
    torch.manual_seed(seed)
    info = dataset.info
    mean, std = input_statistics(x[train])
    model = build_classifier(ModelConfig(**cfg["model"]), info.modality, info.input_shape, info.num_classes, mean, std)
    started = time.perf_counter()
    fit(model, x[train], y[train], config)
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = evaluate(model, x[test], y[test], config.eval_batch_size)
    return {"test_accuracy": test_accuracy, "test_loss": test_loss, "n_train": int(rows.sum()), "train_seconds": seconds}


@stage_task("prune-curve-point")
def train_point(cfg: dict, run_dir: str, point: dict, track: dict) -> dict:
    """Prune by the point's policy, retrain, test; logged as a run nested under the curve's parent."""
    point = CurvePoint(**point)
    curve = PruneConfig(**cfg["prune"]).curve_config()
    with tracking.stage_run(track["uri"], track["experiment"], f"point-{point.name}", track["parent_run_id"], point.__dict__) as run_id:
        dataset, rows, full_rows = point_mask(cfg, RunLayout(run_dir), point)
        epochs = point_epochs(curve.epochs, full_rows, int(rows.sum()), int(cfg["train"]["batch_size"]), curve.budget)
        record = {**point.__dict__, **train_and_test(cfg, dataset, rows, point.seed, epochs), "epochs": epochs}
        tracking.log_metrics(track["uri"], run_id, record)
    return {**record, "mlflow_run_id": run_id}


@stage_task("prune-curve-write")
def write_curve(cfg: dict, run_dir: str, records: list[dict], track: dict, extra: dict) -> dict:
    """Write prune_curve.parquet/.json/.svg/.png; returns the summary (also logged on the parent run)."""
    root = Path(run_dir)
    curve = PruneConfig(**cfg["prune"]).curve_config()
    table = curve_table(records, curve)
    write_parquet(table, root / TABLE_FILE)
    summary = summarise(table)
    fractions = sorted({f for f in curve.fractions if f < 1.0}, reverse=True)
    result = {
        **extra, "points_trained": len(records), "rows": len(table), "full_data_epochs": curve.epochs, "budget": curve.budget,
        "seeds": curve.seeds, "compare": {f"{f:g}": compare_at(summary, f) for f in fractions},
        "summary": summary.to_dict(orient="records"),
    }
    write_json(result, root / SUMMARY_FILE)
    plot_curve(table, [root / name for name in PLOT_FILES])
    for name in (TABLE_FILE, SUMMARY_FILE, *PLOT_FILES):
        tracking.log_artifact(track["uri"], track["parent_run_id"], root / name)
    return result
