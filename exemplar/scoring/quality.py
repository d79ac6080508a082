"""Measuring how well a score finds planted problems: seeded corruptions and detection metrics.

Used by ``benchmarks/bench_quality.py`` and the slow quality test; scores follow the shared
convention (higher = more worth a look).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

ATYPICAL_KINDS = ("inverted", "rotated", "noised")


def flip_labels(labels: np.ndarray, rows: np.ndarray, fraction: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Give `fraction` of the given `rows` a different label chosen uniformly among the other classes.

    Returns (new labels (N,), (N,) bool mask of flipped rows).
    """
    rng = np.random.default_rng(seed)
    chosen = rng.choice(rows, size=int(round(fraction * len(rows))), replace=False)
    noisy = labels.copy()
    noisy[chosen] = (labels[chosen] + rng.integers(1, num_classes, size=len(chosen))) % num_classes
    is_flipped = np.zeros(len(labels), dtype=bool)
    is_flipped[chosen] = True
    return noisy, is_flipped


def make_atypical(images: np.ndarray, rows: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Make `fraction` of `rows` of (N, C, H, W) [0, 1] images atypical, cycling through inverted
    (1 - x), rotated (90 degrees) and noised (Gaussian noise, std 0.5, clipped). Labels are unchanged.

    Returns (new images, (N,) bool mask of altered rows).
    """
    rng = np.random.default_rng(seed)
    chosen = rng.choice(rows, size=int(round(fraction * len(rows))), replace=False)
    out = images.copy()
    for position, row in enumerate(chosen):
        kind = ATYPICAL_KINDS[position % len(ATYPICAL_KINDS)]
        if kind == "inverted":
            out[row] = 1.0 - images[row]
        elif kind == "rotated":
            out[row] = np.rot90(images[row], k=1, axes=(-2, -1))
        else:
            out[row] = np.clip(images[row] + rng.normal(0.0, 0.5, size=images[row].shape), 0.0, 1.0)
    is_altered = np.zeros(len(images), dtype=bool)
    is_altered[chosen] = True
    return out, is_altered


def precision_at_k(is_positive: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Fraction of positives among the k highest scores (ties broken by row order)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return float(is_positive[order].mean()) if k > 0 else float("nan")


def detection_metrics(is_positive: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, average precision and precision@k (k = number of positives); NaN scores rank lowest."""
    filled = np.where(np.isfinite(scores), scores, -np.inf)
    filled = np.where(np.isneginf(filled), np.nanmin(scores[np.isfinite(scores)]) - 1.0, filled)
    return {
        "auroc": float(roc_auc_score(is_positive, filled)),
        "average_precision": float(average_precision_score(is_positive, filled)),
        "precision_at_k": precision_at_k(is_positive, filled, int(is_positive.sum())),
    }
