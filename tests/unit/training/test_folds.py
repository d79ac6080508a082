"""Cross-fitting folds: every training row is held out by exactly R models, test rows by all."""

from __future__ import annotations

import numpy as np
import pytest

from exemplar.errors import ExemplarError
from exemplar.training.folds import crossfit_folds, held_out_confidence, held_out_mask, held_out_probabilities, member_rows


def test_each_training_row_is_held_out_by_one_model_per_repeat():
    labels = np.repeat(np.arange(3), [10, 7, 5])
    assignment = crossfit_folds(labels, folds=2, repeats=4, seed=0)
    assert assignment.shape == (4, 22)
    rows = member_rows(assignment)
    assert len(rows) == 8
    trained_on = np.zeros(22, dtype=int)
    for r in rows:
        trained_on[r] += 1
    assert (trained_on == 4).all()  # 8 models, each row trained on by 4 and held out by 4


def test_folds_are_stratified_and_repeats_differ():
    labels = np.repeat(np.arange(2), [20, 10])
    assignment = crossfit_folds(labels, folds=2, repeats=2, seed=1)
    for repeat in assignment:
        for label in (0, 1):
            counts = np.bincount(repeat[labels == label], minlength=2)
            assert abs(counts[0] - counts[1]) <= 1
    assert not np.array_equal(assignment[0], assignment[1])
    assert np.array_equal(assignment, crossfit_folds(labels, folds=2, repeats=2, seed=1))


def test_held_out_mask_never_marks_a_row_a_model_trained_on():
    labels = np.arange(12) % 3
    assignment = crossfit_folds(labels, folds=3, repeats=2, seed=0)
    is_train = np.array([True, False] * 6 + [True] * 6)  # 12 training rows among 18
    mask = held_out_mask(assignment, is_train)
    train_index = np.flatnonzero(is_train)
    for j, rows in enumerate(member_rows(assignment)):
        assert not mask[j, train_index[rows]].any()
        assert mask[j, np.setdiff1d(np.arange(18), train_index[rows])].all()
    assert (mask[:, ~is_train].sum(axis=0) == 6).all() and (mask[:, is_train].sum(axis=0) == 2).all()


def test_bad_settings_are_user_errors():
    with pytest.raises(ExemplarError, match="crossfit_folds"):
        crossfit_folds(np.zeros(4), folds=1, repeats=2, seed=0)


def test_held_out_probabilities_average_only_the_models_that_never_saw_the_row():
    """Two repeats of two folds over three training rows and a test row, probabilities by hand."""
    assignment = np.array([[0, 1, 1], [1, 0, 0]])
    is_train = np.array([True, True, True, False])
    held = held_out_mask(assignment, is_train)  # model j = repeat * 2 + fold; model 0 held out row 0, ...
    probs = np.zeros((4, 4, 2))
    for model, p in enumerate((0.1, 0.2, 0.3, 0.8)):
        probs[model, :, 0] = p
    probs[:, :, 1] = 1 - probs[:, :, 0]
    out = held_out_probabilities(probs, held)
    # row 0: held out by model 0 (repeat 0, fold 0) and model 3 (repeat 1, fold 1): (0.1 + 0.8) / 2
    # rows 1-2: models 1 and 2; the test row: all four
    np.testing.assert_allclose(out[:, 0], [0.45, 0.25, 0.25, 0.35])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    probs[1, 1, 0], probs[1, 1, 1] = 0.9, 0.1  # model 1 never trained on row 1: it counts there
    probs[0, 1, 0], probs[0, 1, 1] = 0.0, 1.0  # model 0 trained on row 1: it does not
    assert held_out_probabilities(probs, held)[1, 0] == pytest.approx((0.9 + 0.3) / 2)


def test_held_out_confidence_is_one_minus_the_held_out_probability_of_the_given_label():
    held = np.array([[True, False, True], [False, True, True]])  # row 2 held out by both models
    probs = np.array([[[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]], [[0.4, 0.6], [0.3, 0.7], [0.6, 0.4]]])
    out = held_out_confidence(probs, held, np.array([0, 1, 0]))
    np.testing.assert_allclose(out, [1 - 0.9, 1 - 0.7, 1 - (0.2 + 0.6) / 2])
    assert np.isnan(held_out_confidence(probs, np.zeros_like(held), np.array([0, 1, 0]))).all()  # no model held the row out
