from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exemplar.compression.magnitude import global_magnitude_prune
from exemplar.compression.measure import class_accuracy, class_impact, latency_ms, population_accuracy, predict_logits, serialized_bytes
from exemplar.compression.results import cie_summary
from tests.unit.compression.makers import tiny_cnn


def test_class_accuracy_by_hand_and_nan_for_an_absent_class():
    predictions, labels = np.array([0, 1, 1, 2, 0]), np.array([0, 1, 0, 2, 0])
    accuracy = class_accuracy(predictions, labels, 4)
    assert accuracy[:3].tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    assert math.isnan(accuracy[3])


def test_population_accuracy_averages_over_models():
    predictions = np.array([[0, 1, 1], [0, 0, 1]])
    labels = np.array([0, 1, 1])
    assert population_accuracy(predictions, labels, np.array([True, True, False])) == pytest.approx(3 / 4)
    assert math.isnan(population_accuracy(predictions, labels, np.zeros(3, dtype=bool)))


def test_class_impact_welch_t_matches_the_hand_formula():
    dense = np.array([[0.9, 0.8], [1.0, 0.8], [0.95, 0.9]])
    compressed = np.array([[0.5, 0.8], [0.6, 0.85], [0.7, 0.8]])
    impact = class_impact(dense, compressed)
    m1, m2 = compressed[:, 0].mean(), dense[:, 0].mean()
    v1, v2 = compressed[:, 0].var(ddof=1), dense[:, 0].var(ddof=1)
    assert impact.loc[0, "t_statistic"] == pytest.approx((m1 - m2) / math.sqrt(v1 / 3 + v2 / 3))
    assert impact.loc[0, "change"] == pytest.approx(m1 - m2)
    overall = compressed.mean() - dense.mean()
    assert impact["relative_change"].tolist() == pytest.approx((impact["change"] - overall).tolist())
    assert impact.loc[0, "p_value"] < 0.05 < impact.loc[1, "p_value"]


def test_class_impact_with_a_population_of_one_has_no_t_test():
    impact = class_impact(np.array([[1.0, 0.5]]), np.array([[0.5, 0.5]]))
    assert impact["change"].tolist() == [-0.5, 0.0]
    assert impact["p_value"].isna().all()


def test_cie_summary_separates_cie_from_non_cie_rows():
    labels = np.array([0, 1, 2, 0])
    dense = np.array([[0, 1, 2, 0], [0, 1, 1, 0]])
    compressed = np.array([[0, 1, 1, 1], [0, 1, 1, 1]])
    is_cie = np.array([False, False, True, True])
    is_test = np.array([True, True, True, True])
    summary = cie_summary(is_cie, dense, compressed, labels, ~is_test, is_test)
    assert summary["cie_count"] == 2 and summary["cie_fraction_test"] == 0.5
    assert summary["dense_accuracy_cie"] == pytest.approx(3 / 4)
    assert summary["compressed_accuracy_cie"] == 0.0
    assert summary["compressed_accuracy_non_cie"] == 1.0
    assert math.isnan(summary["cie_fraction_train"])


def test_pruned_weights_compress_better_on_disk_and_predictions_are_batched():
    model = tiny_cnn()
    pruned, _ = global_magnitude_prune(model, 0.9)
    assert serialized_bytes(pruned)[1] < serialized_bytes(model)[1]
    x = torch.rand(10, 1, 8, 8)
    assert predict_logits(model, x, batch_size=3) == pytest.approx(model(x).detach().numpy(), abs=1e-6)
    assert latency_ms(model, x, repeats=2) > 0


def test_welch_t_test_matches_scipy_on_a_hand_made_table():
    import warnings

    from scipy import stats

    from exemplar.compression.measure import welch_t_test

    # per-model class accuracies: 5 dense and 4 compressed models, 3 classes (the last has one equal-variance pair)
    dense = np.array([[0.90, 1.00, 0.50], [0.95, 0.98, 0.50], [0.92, 0.99, 0.50], [0.97, 1.00, 0.50], [0.91, 0.97, 0.50]])
    compressed = np.array([[0.80, 0.99, 0.50], [0.70, 0.96, 0.50], [0.85, 1.00, 0.50], [0.75, 0.97, 0.50]])
    t, p = welch_t_test(compressed, dense)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about the constant class
        expected = stats.ttest_ind(compressed, dense, axis=0, equal_var=False)
    assert t[:2] == pytest.approx(expected.statistic[:2], rel=1e-12)
    assert p[:2] == pytest.approx(expected.pvalue[:2], rel=1e-9)
    assert np.isnan(t[2]) and np.isnan(p[2]) and np.isnan(expected.statistic[2])
    # by hand for class 0: means 0.775 and 0.93, t = -0.155 / sqrt(v_c/4 + v_d/5)
    v_c, v_d = np.var(compressed[:, 0], ddof=1), np.var(dense[:, 0], ddof=1)
    assert t[0] == pytest.approx((0.775 - 0.93) / np.sqrt(v_c / 4 + v_d / 5))


def test_t_sf_is_scipy_stats_bit_for_bit():
    from scipy import stats

    from exemplar.compression.measure import t_sf

    rng = np.random.default_rng(0)
    x = np.concatenate([np.abs(rng.standard_t(3, 500)) * 3, [0.0, np.inf, np.nan, 1.5, 2.0, 1e-300, 40.0]])
    df = np.concatenate([rng.uniform(0.5, 60, 500), [3.0, 4.0, 5.0, np.nan, 0.0, np.inf, 1.2]])
    expected = stats.t.sf(x, df)
    assert np.array_equal(t_sf(x, df), expected, equal_nan=True)
    assert np.array_equal(np.isnan(t_sf(x, df)), np.isnan(expected))


def test_bootstrap_intervals_cover_the_estimate_and_are_seeded():
    from exemplar.compression.measure import bootstrap_difference, bootstrap_interval

    values = np.r_[np.ones(30), np.zeros(10)]
    low, high = bootstrap_interval(values, seed=3)
    assert low < 0.75 < high and (low, high) == bootstrap_interval(values, seed=3)
    low, high = bootstrap_difference(np.ones(20), np.r_[np.ones(5), np.zeros(15)])
    assert 0.5 < low <= 0.75 <= high < 1.0
    assert np.isnan(bootstrap_interval(np.array([]))[0])
