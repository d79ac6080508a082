"""Compress: global magnitude pruning of the final model at each configured sparsity, and the
per-example disagreement with the dense model (``scores/compression.parquet``)."""

from __future__ import annotations

import numpy as np

from exemplar.compression.config import CompressConfig, level_tag
from exemplar.compression.disagreement import prediction_flips
from exemplar.compression.magnitude import global_magnitude_prune
from exemplar.models.factory import classifier_from_checkpoint
from exemplar.scoring.outputs import forward_outputs
from exemplar.training.checkpoints import load_checkpoint
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import checkpoint_files, read_dataset, tensors
from tasks.layout import RunLayout


def _accuracy(logits: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> float:
    return float(np.mean(logits[rows].argmax(axis=1) == labels[rows]))


@stage_task("compress")
def compress(cfg: dict, run_dir: str, track: dict) -> dict:
    layout = RunLayout(run_dir)
    config = CompressConfig(**cfg["compress"])
    config.validate()
    with tracking.stage_run(track["uri"], track["experiment"], "compress", track["parent_run_id"], {"compress": cfg["compress"]}) as run_id:
        dataset = read_dataset(layout.dataset)
        x, y = tensors(dataset)
        labels, ids = y.numpy(), dataset.table["id"].to_numpy()
        is_test = (dataset.table["split"] == "test").to_numpy()
        dense = classifier_from_checkpoint(load_checkpoint(checkpoint_files(layout, int(cfg["train"]["seed"]))[-1]))
        dense_logits = forward_outputs(dense, x, config.batch_size).logits
        table = dataset.table[["id"]].copy()
        summary = {"dense_test_accuracy": _accuracy(dense_logits, labels, is_test), "levels": {}}
        for sparsity in config.sparsities:
            tag = level_tag(sparsity)
            pruned, achieved = global_magnitude_prune(dense, sparsity)
            logits = forward_outputs(pruned, x, config.batch_size).logits
            flips = prediction_flips(ids, dense_logits, logits, tag)
            table = table.merge(flips, on="id")
            summary["levels"][tag] = {
                "sparsity": sparsity, "achieved_sparsity": achieved["global"], "per_layer_sparsity": achieved,
                "test_accuracy": _accuracy(logits, labels, is_test),
                "flips": int(flips[f"is_flip_{tag}"].sum()), "test_flips": int(flips[f"is_flip_{tag}"].to_numpy()[is_test].sum()),
            }
        flip_columns = [c for c in table.columns if c.startswith("flip_score_")]
        table["flip_score"] = table[flip_columns].max(axis=1) if flip_columns else 0.0
        write_parquet(table, layout.compression_scores)
        write_json(summary, layout.stage_metrics("compress"))
        tracking.log_metrics(track["uri"], run_id, {k: v for k, v in summary.items() if k != "levels"})
        for tag, level in summary["levels"].items():
            tracking.log_metrics(track["uri"], run_id, {f"{tag}.{k}": v for k, v in level.items() if k != "per_layer_sparsity"})
    return summary
