"""Hand-made report inputs: a fused scores table with hostile class names and ids, and tiny images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.data.images import png_data_uri
from exemplar.report.summary import ReportInputs, score_columns
from exemplar.scoring.fusion import fuse_scores

HOSTILE = "<img src=x onerror=alert(1)>"
CLASSES = ["cat", HOSTILE, "dog"]


def scores_table(n: int = 24, seed: int = 0) -> pd.DataFrame:
    """n rows, half train half test, three classes (one named like an XSS payload), two signals
    of the label family, one atypical one and a CIE column."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    preds = np.where(rng.random(n) < 0.8, labels, (labels + 1) % len(CLASSES))
    table = pd.DataFrame({
        "id": [f"id-{i:03d}" for i in range(n - 1)] + [HOSTILE],
        "split": np.where(np.arange(n) % 2 == 0, "train", "test"),
        "label": labels, "label_name": [CLASSES[k] for k in labels],
        "pred": preds, "pred_name": [CLASSES[k] for k in preds],
        "keep": True, "drop_reason": "",
        "loss_score": rng.exponential(1.0, n), "margin_score": rng.normal(0, 1, n),
        "input_outlier_score": rng.exponential(1.0, n),
        "is_cie_p90": rng.random(n) < 0.2,
    })
    table["cie_score_p90"] = table["is_cie_p90"].astype(float)
    table["cie_score"] = table["cie_score_p90"]
    return fuse_scores(table, score_columns(table))


def inputs(scores: pd.DataFrame | None = None, **extra) -> ReportInputs:
    scores = scores_table() if scores is None else scores
    dataset = {"source": HOSTILE, "hash": "abc123", "modality": "image", "quarantined_by_reason": {"missing_label": 1}}
    quarantine = pd.DataFrame({"id": ["q-1"], "reason": ["missing_label"], "detail": ["no label given"], "file": ["/data/" + HOSTILE + ".png"],
                               "row": [7], "label": [""], "split": ["train"], "original": ["{}"], "image": [None]})
    models = pd.DataFrame({"level": ["dense", "p90"], "seed": [0, 0], **{f"class_accuracy_{k}": [0.9, 0.5] for k in range(3)}})
    return ReportInputs(scores=scores, dataset=dataset, metrics={"test_accuracy": 0.8, "note": HOSTILE}, class_names=CLASSES,
                        models=models, quarantine=quarantine, filter_summary={"dropped": 0, "dropped_by_reason": {}, "label_conflicts": 0},
                        **extra)


def thumbnails(ids: list[str]) -> dict[str, str]:
    """A distinct 8x8 grey image per id, as inline PNG."""
    return {row_id: png_data_uri(np.full((1, 8, 8), 20 * (i % 12), dtype=np.uint8), scale=4) for i, row_id in enumerate(ids)}
