"""Cross-fitted population: which training rows each model of the population never sees.

With K folds and R repeats, repeat r draws its own stratified partition of the N training rows into K
folds; model (r, k) trains on every training row outside fold k of repeat r. So each training row is
held out by exactly R models (one per repeat), and rows outside the training set (the test split) by
all R * K. Out-of-sample predictions of a row come only from the models that held it out
(:func:`held_out_mask`).

Why K = 2 by default: R repeats cost R * (K - 1) full-data trainings and give R held-out models per
training row, so two folds buy the most out-of-sample models per unit of compute; the price is that
each model sees half the rows, which matters little for CIE, a comparison of each model with its own
compressed copy.
"""

from __future__ import annotations

import numpy as np

from exemplar.errors import ExemplarError


def crossfit_folds(labels: np.ndarray, folds: int, repeats: int, seed: int) -> np.ndarray:
    """(N,) int labels of the training rows -> (R, N) fold index in 0..K-1 per repeat, stratified by
    label (each class's rows are dealt round-robin to the folds in a seeded random order)."""
    labels = np.asarray(labels)
    if folds < 2 or repeats < 1:
        raise ExemplarError(f"train.crossfit_folds must be >= 2 and train.crossfit_repeats >= 1, got {folds} and {repeats}.")
    if len(labels) < folds:
        raise ExemplarError(f"{len(labels)} training rows cannot be split into train.crossfit_folds={folds} folds. Fix: lower it.")
    assignment = np.empty((repeats, len(labels)), dtype=np.int64)
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        order = rng.permutation(len(labels))
        order = order[np.argsort(labels[order], kind="stable")]  # classes together, random within
        offset = rng.integers(folds)
        assignment[repeat, order] = (np.arange(len(labels)) + offset) % folds
    return assignment


def member_rows(assignment: np.ndarray) -> list[np.ndarray]:
    """(R, N) folds -> for model j = r * K + k, the sorted indices of the rows it trains on
    (every row outside fold k of repeat r)."""
    folds = int(assignment.max()) + 1
    return [np.flatnonzero(assignment[r] != k) for r in range(len(assignment)) for k in range(folds)]


def held_out_mask(assignment: np.ndarray, is_train: np.ndarray) -> np.ndarray:
    """(R, n_train) folds over the training rows and (N,) bool training mask over all rows ->
    (M, N) bool: True where model j = r * K + k did not train on row n (its fold k of repeat r, and
    every row outside the training set)."""
    folds = int(assignment.max()) + 1
    mask = np.ones((len(assignment) * folds, len(is_train)), dtype=bool)
    train_index = np.flatnonzero(is_train)
    for j, rows in enumerate(member_rows(assignment)):
        mask[j, train_index[rows]] = False
    return mask


def held_out_probabilities(probs: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """(M, N, C) class probabilities of the M cross-fitted models and their (M, N) :func:`held_out_mask` ->
    (N, C) out-of-fold probabilities: each row's mean over the models that never trained on it (NaN for
    a row no model held out)."""
    weights = held_out[:, :, None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (probs * weights).sum(axis=0) / weights.sum(axis=0)


def held_out_confidence(probs: np.ndarray, held_out: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(M, N, C) probabilities of the cross-fitted models, their (M, N) held-out mask and the (N,) given labels
    -> (N,) 1 - p(given label) under :func:`held_out_probabilities` (cleanlab's self-confidence score, turned
    so that higher = more suspicious; NaN for a row no model held out)."""
    mean = held_out_probabilities(probs, held_out)
    return 1.0 - mean[np.arange(len(labels)), np.asarray(labels)]
