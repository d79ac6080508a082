import numpy as np
import pandas as pd
import pytest

from exemplar.errors import ExemplarError
from exemplar.scoring.config import ScoreConfig
from exemplar.scoring.crossfit import (
    CrossfitConfig, base_learners, can_early_stop, combine_folds, crossfit_probabilities, crossfit_signals, fit_fold, fold_assignment,
    normalized_margin_score, resolve_learner, self_confidence_score, training_rows,
)


def blobs(n: int = 150, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well separated Gaussian blobs (N, 4) with labels (N,)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    return rng.normal(size=(n, 4)) * 0.5 + labels[:, None] * 4.0, labels


def test_fold_assignment_is_stratified_seeded_and_covers_only_fitted_rows():
    _, labels = blobs()
    is_fit = np.arange(150) < 120
    assignment = fold_assignment(labels, is_fit, 5, seed=3)
    assert (assignment[~is_fit] == -1).all() and set(assignment[is_fit]) == set(range(5))
    for fold in range(5):
        assert np.bincount(labels[assignment == fold], minlength=3).tolist() == [8, 8, 8]
    np.testing.assert_array_equal(assignment, fold_assignment(labels, is_fit, 5, seed=3))
    assert not np.array_equal(assignment, fold_assignment(labels, is_fit, 5, seed=4))


def test_out_of_fold_rows_never_appear_in_their_own_models_training_set():
    _, labels = blobs()
    is_fit = np.arange(150) % 7 != 0
    assignment = fold_assignment(labels, is_fit, 5, seed=0)
    for fold in range(5):
        fit_on = training_rows(assignment, fold)
        assert not (fit_on & (assignment == fold)).any()
        assert not (fit_on & ~is_fit).any()  # test/dropped rows are never fit on
        assert (fit_on | (assignment == fold) | ~is_fit).all()


def test_each_fitted_row_takes_its_own_folds_model_and_other_rows_the_mean():
    assignment = np.array([0, 1, 2, -1, 1, 0])
    fold_probs = [np.tile(np.eye(3)[k], (6, 1)) for k in range(3)]  # model k predicts class k everywhere
    combined = combine_folds(fold_probs, assignment)
    np.testing.assert_allclose(combined[[0, 1, 2, 4, 5]], np.eye(3)[[0, 1, 2, 1, 0]])
    np.testing.assert_allclose(combined[3], [1 / 3, 1 / 3, 1 / 3])


def test_out_of_sample_probabilities_do_not_memorise_random_labels():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(120, 60)), rng.integers(0, 3, 120)
    is_fit = np.ones(120, dtype=bool)
    config = CrossfitConfig(learner="logistic")
    in_sample = fit_fold(x, labels, np.zeros(120, dtype=int), 1, 3, "logistic", config).argmax(axis=1)  # fit on every row
    out_of_sample = crossfit_probabilities(x, labels, is_fit, 3, config).argmax(axis=1)
    assert np.mean(in_sample == labels) > 0.9
    assert np.mean(out_of_sample == labels) < 0.55


@pytest.mark.parametrize("learner", ["hgb", "logistic", "hgb+logistic"])
def test_a_planted_flip_tops_every_out_of_sample_signal(learner):
    x, labels = blobs()
    noisy = labels.copy()
    noisy[7] = (labels[7] + 1) % 3
    is_fit = np.arange(150) < 130
    probs = crossfit_probabilities(x, noisy, is_fit, 3, CrossfitConfig(learner=learner, max_iter=30))
    signals = crossfit_signals(probs, noisy, is_fit)
    for name in ("oos_confidence", "oos_margin", "label_issue"):
        assert np.argmax(signals[name]) == 7, name
    assert signals["is_label_issue"][7] and signals["is_label_issue"].sum() <= 3


def test_signal_formulas_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    labels = np.array([0, 1])
    np.testing.assert_allclose(self_confidence_score(probs, labels), [0.3, 0.7])
    np.testing.assert_allclose(normalized_margin_score(probs, labels), [-0.5, 0.3])


def test_config_is_nested_and_validated():
    assert ScoreConfig(oos={"learner": "hgb", "folds": 3}).oos == CrossfitConfig(learner="hgb", folds=3)
    assert resolve_learner("auto", "table") == "hgb" and resolve_learner("auto", "image") == "logistic"
    assert resolve_learner("hgb+logistic", "table") == "hgb+logistic" and base_learners("hgb+logistic") == ("hgb", "logistic")
    ScoreConfig(oos={"learner": "hgb+logistic"}).validate()
    with pytest.raises(ExemplarError, match="score.oos.learner"):
        ScoreConfig(oos={"learner": "forest"}).validate()
    with pytest.raises(ExemplarError, match="score.oos.folds"):
        fold_assignment(np.zeros(6, dtype=int), np.ones(6, dtype=bool), 5, 0)


def test_hgb_reads_a_native_frame_with_categories_and_gaps():
    rng = np.random.default_rng(0)
    n = 200
    labels = np.arange(n) % 2
    colour = pd.Categorical(np.where(labels == 1, "red", "blue"), categories=["blue", "red"])
    noise = rng.normal(size=n)
    noise[::7] = np.nan
    frame = pd.DataFrame({"colour": colour, "noise": noise})
    noisy = labels.copy()
    noisy[3] = 1 - labels[3]
    probs = crossfit_probabilities(frame, noisy, np.ones(n, dtype=bool), 2, CrossfitConfig(learner="hgb", max_iter=20))
    assert np.argmax(self_confidence_score(probs, noisy)) == 3
    with pytest.raises(ExemplarError, match="numeric model inputs"):
        crossfit_probabilities(frame, noisy, np.ones(n, dtype=bool), 2, CrossfitConfig(learner="logistic"))


def test_an_ensemble_fold_is_the_mean_of_its_base_learners_each_on_its_own_inputs():
    """hgb reads the native frame (a category and a gap), logistic the numeric inputs; both are fit on the
    same rows (fold 1 out), and the ensemble's probabilities are their equal-weight mean."""
    x, labels = blobs(n=90)
    frame = pd.DataFrame({"a": x[:, 0], "b": pd.Categorical(np.where(x[:, 1] > 0, "up", "down"))})
    frame.loc[5, "a"] = np.nan
    assignment = fold_assignment(labels, np.ones(90, dtype=bool), 3, seed=0)
    config = CrossfitConfig(max_iter=20)
    inputs = {"hgb": frame, "logistic": x}
    ensemble = fit_fold(inputs, labels, assignment, 1, 3, "hgb+logistic", config)
    parts = [fit_fold(inputs[base], labels, assignment, 1, 3, base, config) for base in ("hgb", "logistic")]
    np.testing.assert_allclose(ensemble, (parts[0] + parts[1]) / 2)
    np.testing.assert_allclose(ensemble.sum(axis=1), 1.0)


def test_early_stopping_needs_every_class_on_both_sides_of_its_holdout():
    """HGB holds out ceil(10%) of the rows, stratified: every class twice, and a row of each class per side."""
    assert can_early_stop(np.array([0] * 10 + [1] * 10))  # 2 held out for 2 classes
    assert not can_early_stop(np.array([0] * 18 + [1]))  # a class with one row
    assert not can_early_stop(np.array([0] * 16 + [1] * 2 + [2] * 2))  # 2 held out for 3 classes
    assert can_early_stop(np.array([0] * 17 + [1] * 2 + [2] * 2))  # 21 rows: 3 held out for 3 classes


def test_a_class_with_one_training_row_is_fit_and_its_row_tops_the_queue():
    """A one-row class (a mistyped label) broke HGB's stratified early-stopping split; the learner now fits
    every fold, and the row's own fold never saw its class, so its self-confidence score is the maximum."""
    x, labels = blobs(n=120, classes=2)
    labels = labels.copy()
    labels[7] = 2
    probs = crossfit_probabilities(x, labels, np.ones(120, dtype=bool), 3, CrossfitConfig(learner="hgb", max_iter=20))
    scores = self_confidence_score(probs, labels)
    assert scores[7] == 1.0 and np.argmax(scores) == 7


def test_logistic_on_a_small_image_set_keeps_no_more_components_than_rows():
    """48 training rows of 300 pixels: each fold fits on 32 rows, fewer than max_features (256) components."""
    rng = np.random.default_rng(0)
    labels = np.arange(48) % 2
    pixels = rng.normal(size=(48, 300)) + labels[:, None]
    probs = crossfit_probabilities(pixels, labels, np.ones(48, dtype=bool), 2, CrossfitConfig(learner="logistic", folds=3))
    assert probs.shape == (48, 2) and np.allclose(probs.sum(axis=1), 1.0)
