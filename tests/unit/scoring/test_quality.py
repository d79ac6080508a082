import numpy as np

from exemplar.scoring.quality import detection_metrics, flip_labels, make_atypical, precision_at_k


def test_flip_labels_changes_exactly_the_chosen_fraction_to_other_classes():
    labels = np.arange(100) % 10
    rows = np.arange(0, 80)
    noisy, flipped = flip_labels(labels, rows, 0.1, 10, seed=0)
    assert flipped.sum() == 8 and not flipped[80:].any()
    assert np.all(noisy[flipped] != labels[flipped]) and np.all(noisy[~flipped] == labels[~flipped])
    assert np.all((0 <= noisy) & (noisy < 10))


def test_make_atypical_alters_only_chosen_rows():
    images = np.random.default_rng(0).random((30, 1, 4, 4)).astype(np.float32)
    out, altered = make_atypical(images, np.arange(30), 0.2, seed=0)
    assert altered.sum() == 6
    assert np.array_equal(out[~altered], images[~altered])
    assert all(not np.array_equal(out[i], images[i]) for i in np.flatnonzero(altered))


def test_detection_metrics_of_a_perfect_and_a_reversed_score():
    truth = np.array([True, False, False, True, False])
    perfect = detection_metrics(truth, truth.astype(float))
    assert perfect == {"auroc": 1.0, "average_precision": 1.0, "precision_at_k": 1.0}
    assert detection_metrics(truth, -truth.astype(float))["auroc"] == 0.0
    assert precision_at_k(truth, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), 2) == 0.5


def test_nan_scores_rank_lowest():
    truth = np.array([True, False, False])
    assert detection_metrics(truth, np.array([1.0, np.nan, 0.5]))["auroc"] == 1.0
