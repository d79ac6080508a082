"""Compression Identified Exemplars (Hooker et al. 2019, "What Do Compressed Deep Neural Networks
Forget?", arXiv 1911.05248).

Given predicted labels of a population of S dense models and S compressed models on N examples:

- modal CIE (the paper's PIE rule): ``is_cie[n] = mode(compressed[:, n]) != mode(dense[:, n])``,
  ties in a mode broken towards the smallest label;
- taxicab CIE: ``cie_score[n] = sum_k |P_c(k | n) - P_d(k | n)|`` in [0, 2], the L1 distance between
  the populations' predicted-label distributions P(k | n) = #{s : pred[s, n] = k} / S.

With S = 1 both reduce to dense-vs-compressed prediction flips (score 0 or 2). Out of sample
(``held_out``), P(k | n) counts only the models that did not train on row n, and their compressed copies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def label_distribution(predictions: np.ndarray, num_classes: int, held_out: np.ndarray | None = None) -> np.ndarray:
    """(S, N) int labels -> (N, K) fraction of the models predicting each class. With `held_out`
    ((S, N) bool) only model s's predictions on rows it held out count (out of sample)."""
    predictions = np.asarray(predictions)
    weights = np.ones(predictions.shape, dtype=float) if held_out is None else np.asarray(held_out, dtype=float)
    counts = np.zeros((predictions.shape[1], num_classes))
    columns = np.arange(predictions.shape[1])
    for row, weight in zip(predictions, weights):
        np.add.at(counts, (columns, row), weight)
    return counts / np.maximum(weights.sum(axis=0), 1.0)[:, None]


def modal_labels(predictions: np.ndarray, num_classes: int, held_out: np.ndarray | None = None) -> np.ndarray:
    """(S, N) int labels -> (N,) most frequent label per example (ties: smallest label)."""
    return label_distribution(predictions, num_classes, held_out).argmax(axis=1)


def find_cie(dense: np.ndarray, compressed: np.ndarray, num_classes: int, held_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(S, N) dense and compressed predicted labels (compressed[s] is dense model s compressed) ->
    (is_cie (N,) bool, cie_score (N,) float). `held_out` ((S, N) bool): use only the models that did
    not train on each row, for both populations."""
    if np.shape(dense)[1] != np.shape(compressed)[1]:
        raise ValueError(f"dense and compressed predictions cover {np.shape(dense)[1]} and {np.shape(compressed)[1]} examples")
    if held_out is not None and np.shape(dense)[0] != np.shape(compressed)[0]:
        raise ValueError("held-out CIE pairs each dense model with its compressed copy: give as many of each")
    dense_dist = label_distribution(dense, num_classes, held_out)
    compressed_dist = label_distribution(compressed, num_classes, held_out)
    is_cie = dense_dist.argmax(axis=1) != compressed_dist.argmax(axis=1)
    return is_cie, np.abs(compressed_dist - dense_dist).sum(axis=1)


def cie_table(ids: np.ndarray, dense: np.ndarray, compressed: dict[str, np.ndarray], num_classes: int,
              held_out: np.ndarray | None = None, labels: np.ndarray | None = None) -> pd.DataFrame:
    """One row per id: ``is_cie_<level>``, ``cie_score_<level>`` for each level of `compressed`
    ((S, N) labels each), ``cie_score`` = max over levels, and the modal labels used. With
    `held_out`: ``oos_models`` (models that held the row out) and, given `labels`,
    ``dense_oos_accuracy`` (share of those dense models right on the row)."""
    table = pd.DataFrame({"id": ids, "modal_label_dense": modal_labels(dense, num_classes, held_out)})
    if held_out is not None:
        table["oos_models"] = np.asarray(held_out).sum(axis=0)
        if labels is not None:
            table["dense_oos_accuracy"] = row_accuracy(dense, labels, held_out)
    for tag, predictions in compressed.items():
        is_cie, score = find_cie(dense, predictions, num_classes, held_out)
        table[f"modal_label_{tag}"] = modal_labels(predictions, num_classes, held_out)
        table[f"is_cie_{tag}"] = is_cie
        table[f"cie_score_{tag}"] = score
    scores = [f"cie_score_{tag}" for tag in compressed]
    table["cie_score"] = table[scores].max(axis=1) if scores else 0.0
    return table


def row_accuracy(predictions: np.ndarray, labels: np.ndarray, held_out: np.ndarray | None = None) -> np.ndarray:
    """(S, N) predicted labels, (N,) labels -> (N,) share of the (held-out) models right on each row
    (NaN for a row no model held out)."""
    hits = (np.asarray(predictions) == np.asarray(labels)[None, :]).astype(float)
    weights = np.ones_like(hits) if held_out is None else np.asarray(held_out, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hits * weights).sum(axis=0) / weights.sum(axis=0)
