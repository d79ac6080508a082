import numpy as np
import pytest

from exemplar.errors import ExemplarError
from exemplar.scoring.outlier import knn_distance


def brute_force(points, is_reference, k):
    reference = np.flatnonzero(is_reference)
    out = []
    for i, p in enumerate(points):
        others = [r for r in reference if r != i]
        distances = np.sort(np.linalg.norm(points[others] - p, axis=1))
        out.append(distances[:k].mean())
    return np.array(out)


def test_knn_distance_equals_brute_force_and_excludes_self():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 4))
    points[7] += 25.0  # a planted outlier
    is_reference = np.arange(30) < 22
    scores = knn_distance(points, is_reference, k=3)
    np.testing.assert_allclose(scores, brute_force(points, is_reference, 3), rtol=1e-5)
    assert scores.argmax() == 7


def test_image_shaped_points_are_flattened():
    points = np.random.default_rng(1).random((10, 1, 4, 4))
    np.testing.assert_allclose(knn_distance(points, np.ones(10, bool), 2), brute_force(points.reshape(10, -1), np.ones(10, bool), 2), rtol=1e-5)


def test_too_few_training_rows_is_a_user_error():
    with pytest.raises(ExemplarError, match="outlier_k"):
        knn_distance(np.zeros((5, 2)), np.array([True, True, False, False, False]), k=3)
