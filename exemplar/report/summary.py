"""The report's content as plain data (the JSON twin of the HTML page)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SIGNAL_SUFFIX = "_score"


def score_columns(scores: pd.DataFrame) -> list[str]:
    """All per-example signal columns (``<name>_score``), excluding the fused ``audit_score``."""
    return [c for c in scores.columns if c.endswith(SIGNAL_SUFFIX) and c != "audit_score"]


def top_examples(scores: pd.DataFrame, column: str, k: int) -> pd.DataFrame:
    """The k rows with the highest `column` (ties broken by id so the order is stable)."""
    ordered = scores.assign(_neg=-scores[column].to_numpy()).sort_values(["_neg", "id"], kind="stable")
    return ordered.drop(columns="_neg").head(k)


def _row(record: pd.Series, columns: list[str]) -> dict:
    entry = {
        "id": str(record["id"]),
        "split": str(record["split"]),
        "label": int(record["label"]),
        "label_name": str(record["label_name"]),
        "pred": int(record["pred"]),
        "pred_name": str(record["pred_name"]),
    }
    entry.update({c: _finite(record[c]) for c in columns})
    return entry


def _finite(value: object) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def build_report(scores: pd.DataFrame, dataset: dict, metrics: dict, top_k: int, queue_size: int) -> dict:
    """Assemble the report: dataset facts, headline metrics, the review queue and the top-k per signal.

    `scores` is the final scores table (``id``, ``split``, ``label``, ``label_name``, ``pred``,
    ``pred_name``, ``<name>_score`` columns, ``audit_score``, ``audit_rank``).
    """
    signals = score_columns(scores)
    queue = scores.sort_values("audit_rank").head(queue_size)
    return {
        "dataset": dataset,
        "metrics": metrics,
        "signals": signals,
        "review_queue": [_row(r, ["audit_score", "audit_rank", *signals]) for _, r in queue.iterrows()],
        "top_by_signal": {
            column: [_row(r, [column]) for _, r in top_examples(scores, column, top_k).iterrows()]
            for column in signals
        },
        "counts": {
            "examples": int(len(scores)),
            "train": int((scores["split"] == "train").sum()),
            "test": int((scores["split"] == "test").sum()),
            "wrong_predictions": int(np.sum(scores["pred"].to_numpy() != scores["label"].to_numpy())),
        },
    }
