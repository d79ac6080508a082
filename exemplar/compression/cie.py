"""Compression Identified Exemplars (Hooker et al. 2019, "What Do Compressed Deep Neural Networks
Forget?", arXiv 1911.05248).

Given predicted labels of a population of S dense models and S compressed models on N examples:

- modal CIE (the paper's PIE rule): ``is_cie[n] = mode(compressed[:, n]) != mode(dense[:, n])``,
  ties in a mode broken towards the smallest label;
- taxicab CIE: ``cie_score[n] = sum_k |P_c(k | n) - P_d(k | n)|`` in [0, 2], the L1 distance between
  the populations' predicted-label distributions P(k | n) = #{s : pred[s, n] = k} / S.

With S = 1 both reduce to dense-vs-compressed prediction flips (score 0 or 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def label_distribution(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(S, N) int labels -> (N, K) fraction of the S models predicting each class."""
    predictions = np.asarray(predictions)
    counts = np.zeros((predictions.shape[1], num_classes))
    for row in predictions:
        counts[np.arange(predictions.shape[1]), row] += 1
    return counts / predictions.shape[0]


def modal_labels(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(S, N) int labels -> (N,) most frequent label per example (ties: smallest label)."""
    return label_distribution(predictions, num_classes).argmax(axis=1)


def find_cie(dense: np.ndarray, compressed: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, N) dense and (S', N) compressed predicted labels -> (is_cie (N,) bool, cie_score (N,) float)."""
    if np.shape(dense)[1] != np.shape(compressed)[1]:
        raise ValueError(f"dense and compressed predictions cover {np.shape(dense)[1]} and {np.shape(compressed)[1]} examples")
    dense_dist = label_distribution(dense, num_classes)
    compressed_dist = label_distribution(compressed, num_classes)
    is_cie = dense_dist.argmax(axis=1) != compressed_dist.argmax(axis=1)
    return is_cie, np.abs(compressed_dist - dense_dist).sum(axis=1)


def cie_table(ids: np.ndarray, dense: np.ndarray, compressed: dict[str, np.ndarray], num_classes: int) -> pd.DataFrame:
    """One row per id: ``is_cie_<level>``, ``cie_score_<level>`` for each level of `compressed`
    ((S, N) labels each), ``cie_score`` = max over levels, and the modal labels used."""
    table = pd.DataFrame({"id": ids, "modal_label_dense": modal_labels(dense, num_classes)})
    for tag, predictions in compressed.items():
        is_cie, score = find_cie(dense, predictions, num_classes)
        table[f"modal_label_{tag}"] = modal_labels(predictions, num_classes)
        table[f"is_cie_{tag}"] = is_cie
        table[f"cie_score_{tag}"] = score
    scores = [f"cie_score_{tag}" for tag in compressed]
    table["cie_score"] = table[scores].max(axis=1) if scores else 0.0
    return table
