"""Join every stage's per-example tables into the final ``scores.parquet`` and headline metrics."""

from __future__ import annotations

import base64
import io
from dataclasses import asdict

import numpy as np
import pandas as pd
from PIL import Image

from exemplar.data.canonical import Dataset
from exemplar.data.images import array_to_image
from exemplar.report.summary import score_columns
from exemplar.scoring.fusion import DEFAULT, FusionConfig, fuse_scores, with_ensemble_confidence

BASE = ["id", "split", "label", "label_name"]


def assemble_scores(dataset: Dataset, keep: pd.DataFrame, score_tables: list[pd.DataFrame],
                    recipe: FusionConfig = DEFAULT) -> pd.DataFrame:
    """One row per example: base columns, ``pred``/``pred_name``, the keep mask, every score table
    (joined on ``id``), ``ensemble_confidence_score`` (the held-out confidences averaged), then ``audit_score`` and
    its ranks fused over all ``<name>_score`` columns by `recipe` (``report.fusion``; the shipped default)."""
    table = dataset.table[BASE].merge(keep, on="id", how="left")
    for scores in score_tables:
        table = table.merge(scores, on="id", how="left", validate="one_to_one")
    names = np.asarray(dataset.info.class_names, dtype=object)
    table.insert(table.columns.get_loc("label_name") + 1, "pred_name", names[table["pred"].to_numpy()])
    table = with_ensemble_confidence(table)
    return fuse_scores(table, score_columns(table), **asdict(recipe))


def thumbnail_uri(pixels: np.ndarray, target: int) -> str:
    """(C, H, W) uint8 -> inline PNG: reduced to fit `target` pixels when larger; enlarged by an integer
    factor (nearest neighbour) when under half of it, so 8x8 digits stay legible outside the page too;
    otherwise stored as is (the page enlarges it, pixelated)."""
    image = array_to_image(pixels)
    side = max(image.size)
    if side > target:
        image.thumbnail((target, target), Image.Resampling.LANCZOS)
    elif 2 * side < target:
        image = image.resize((image.width * (target // side), image.height * (target // side)), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnails(dataset: Dataset, ids: set[str], target_pixels: int) -> dict[str, str]:
    """Inline PNG data URIs for the given ids only (images; tables get none), about `target_pixels` a side."""
    if dataset.info.modality != "image" or not ids:
        return {}
    chosen = dataset.table[dataset.table["id"].isin(ids)]
    shape = tuple(dataset.info.image_shape)
    return {row_id: thumbnail_uri(np.frombuffer(blob, dtype=np.uint8).reshape(shape), target_pixels)
            for row_id, blob in zip(chosen["id"], chosen["pixels"])}


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


def training_curves(frames: dict[int, list[pd.DataFrame]]) -> pd.DataFrame:
    """(seed, epoch, accuracy, confidence): per seed and epoch, the share of training rows predicted
    correctly and their mean probability of the given label (from the dynamics/ tables)."""
    rows = [
        {"seed": seed, "epoch": int(frame["epoch"].iat[0]), "accuracy": float(frame["correct"].mean()),
         "confidence": float(frame["label_probability"].mean())}
        for seed, epochs in frames.items() for frame in epochs if len(frame)
    ]
    return pd.DataFrame(rows, columns=["seed", "epoch", "accuracy", "confidence"])


def headline_markdown(content: dict, shown: int = 10) -> str:
    """The report's headline as Markdown (for a Prefect artifact): the numbers, then the top of the queue."""
    summary, metrics = content["summary"], content["metrics"]
    lines = [f"# exemplar data audit: {summary['rows']} rows, {summary['classes']} classes",
             "", "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |"
              for key, value in sorted(metrics.items()) if not isinstance(value, (dict, list))]
    decided = (content.get("changes") or {}).get("decisions")
    if decided:
        lines += ["", f"Reviewer decisions applied: {decided['labels_changed']} relabelled, {decided['rows_removed']} removed."]
    lines += ["", "## Review first", ""]
    lines += [f"{i + 1}. `{row['id']}` given *{row['label_name']}*, predicted *{row['pred_name']}*: {row['why']}"
              for i, row in enumerate(queue_table(content, shown))]
    atypical = [r for r in content.get("atypical_queue", []) if r["split"] == "train"][:max(1, shown // 2)]
    if atypical:
        lines += ["", "## Most atypical inputs (the report's Atypical inputs order)", ""]
        lines += [f"{row['atypical_rank']}. `{row['id']}` given *{row['label_name']}* (audit rank {row['audit_rank']}): {_why(row)}"
                  for row in atypical]
    return "\n".join(lines)


def queue_table(content: dict, shown: int) -> list[dict]:
    """The first `shown` training rows of the queue as flat records (for a Prefect table artifact)."""
    rows = [r for r in content["review_queue"] if r["split"] == "train"][:shown]
    return [{"rank": r["audit_rank"], "id": r["id"], "label_name": r["label_name"], "pred_name": r["pred_name"],
             "audit_top_percent": round(100 - r["audit_percentile"], 2), "why": _why(r)} for r in rows]


def _why(row: dict) -> str:
    return "; ".join(w["text"] for w in row["why"]) or "n/a"
