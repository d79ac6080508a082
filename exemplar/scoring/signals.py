"""Per-example signals computed from logits. Every function maps (N, K) logits and (N,) labels to an
(N,) score where higher means more worth a human's look."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, computed stably in float64."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def softmax_error(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, K) softmax(z) - onehot(y): the error vector behind EL2N and last-layer gradients."""
    error = softmax(logits)
    error[np.arange(len(labels)), labels] -= 1.0
    return error


def loss_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of the given label: -log softmax(z)_y."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return log_norm - shifted[np.arange(len(labels)), labels]


def margin_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Negative logit margin: max_{k != y} z_k - z_y (positive when the model prefers another class)."""
    rows = np.arange(len(labels))
    given = logits[rows, labels].astype(np.float64)
    others = logits.astype(np.float64).copy()
    others[rows, labels] = -np.inf
    return others.max(axis=1) - given


def el2n_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """EL2N (Paul et al., 2021): || softmax(z) - onehot(y) ||_2."""
    return np.linalg.norm(softmax_error(logits, labels), axis=1)


def confidently_wrong_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probability of the most likely class when that class is not the given label, else 0."""
    probs = softmax(logits)
    predicted = probs.argmax(axis=1)
    return np.where(predicted != labels, probs.max(axis=1), 0.0)
