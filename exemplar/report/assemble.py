"""Join every stage's per-example tables into the final ``scores.parquet`` and headline metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from exemplar.data.canonical import Dataset
from exemplar.data.images import png_data_uri
from exemplar.report.summary import score_columns
from exemplar.scoring.fusion import fuse_scores

BASE = ["id", "split", "label", "label_name"]


def assemble_scores(dataset: Dataset, keep: pd.DataFrame, score_tables: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per example: base columns, ``pred``/``pred_name``, the keep mask, every score table
    (joined on ``id``), then ``audit_score`` and ``audit_rank`` fused over all ``<name>_score`` columns."""
    table = dataset.table[BASE].merge(keep, on="id", how="left")
    for scores in score_tables:
        table = table.merge(scores, on="id", how="left", validate="one_to_one")
    names = np.asarray(dataset.info.class_names, dtype=object)
    table.insert(table.columns.get_loc("label_name") + 1, "pred_name", names[table["pred"].to_numpy()])
    return fuse_scores(table, score_columns(table))


def thumbnails(dataset: Dataset, ids: set[str], min_pixels: int) -> dict[str, str]:
    """Inline PNG data URIs for the given ids (images only; tables get none)."""
    if dataset.info.modality != "image" or not ids:
        return {}
    chosen = dataset.table[dataset.table["id"].isin(ids)]
    shape = tuple(dataset.info.image_shape)
    scale = max(1, math.ceil(min_pixels / max(shape[1:])))
    return {
        row_id: png_data_uri(np.frombuffer(blob, dtype=np.uint8).reshape(shape), scale)
        for row_id, blob in zip(chosen["id"], chosen["pixels"])
    }


def headline(dataset_summary: dict, filter_summary: dict, compress_summary: dict, scores: pd.DataFrame) -> dict:
    """The few numbers a user reads first (flat dict of scalars)."""
    is_test = scores["split"] == "test"
    kept_test = is_test & scores["keep"].fillna(True).astype(bool)
    metrics = {
        "dataset_hash": dataset_summary["hash"],
        "rows": dataset_summary["rows"],
        "classes": dataset_summary["num_classes"],
        "quarantined": dataset_summary.get("quarantined", 0),
        "duplicates_dropped": filter_summary["dropped"] - filter_summary.get("pruning", {}).get("dropped", 0),  # pruned rows are not duplicates
        "label_conflicts": filter_summary["label_conflicts"],
        "test_accuracy": float((scores.loc[kept_test, "pred"] == scores.loc[kept_test, "label"]).mean()),
        "population": compress_summary.get("population", 1),
    }
    for tag, level in compress_summary.get("levels", {}).items():
        metrics[f"test_accuracy_{tag}"] = level["test_accuracy"]
        metrics[f"cie_{tag}"] = level["cie_count"]
    return metrics
