from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from exemplar.compression.cie import cie_table, find_cie, label_distribution, modal_labels

# Hand-made populations of S = 3 models on N = 4 examples, K = 3 classes.
DENSE = np.array([[0, 1, 2, 0], [0, 1, 2, 1], [0, 2, 2, 1]])
COMPRESSED = np.array([[0, 2, 2, 0], [0, 2, 1, 0], [0, 1, 1, 2]])


def test_modal_cie_on_a_hand_made_table():
    assert modal_labels(DENSE, 3).tolist() == [0, 1, 2, 1]
    assert modal_labels(COMPRESSED, 3).tolist() == [0, 2, 1, 0]
    is_cie, _ = find_cie(DENSE, COMPRESSED, 3)
    assert is_cie.tolist() == [False, True, True, True]


def test_taxicab_cie_on_a_hand_made_table():
    # n1: |2/3 - 1/3| + |1/3 - 2/3| = 2/3; n2: 2/3 + 2/3; n3: |1/3 - 2/3| + |2/3 - 0| + |0 - 1/3|
    _, score = find_cie(DENSE, COMPRESSED, 3)
    assert score == pytest.approx([0.0, 2 / 3, 4 / 3, 4 / 3])


def test_ties_go_to_the_smallest_label_so_a_swapped_split_is_not_cie():
    is_cie, score = find_cie(np.array([[0], [1]]), np.array([[1], [0]]), 2)
    assert modal_labels(np.array([[1], [0]]), 2).tolist() == [0]
    assert is_cie.tolist() == [False] and score.tolist() == [0.0]


def test_population_of_one_reduces_to_prediction_flips():
    is_cie, score = find_cie(np.array([[0, 1, 2]]), np.array([[0, 2, 2]]), 3)
    assert is_cie.tolist() == [False, True, False]
    assert score.tolist() == [0.0, 2.0, 0.0]


def test_label_distribution_matches_a_counting_loop():
    rng = np.random.default_rng(0)
    predictions = rng.integers(0, 5, size=(7, 30))
    distribution = label_distribution(predictions, 5)
    for n in range(30):
        counts = Counter(predictions[:, n].tolist())
        assert distribution[n].tolist() == pytest.approx([counts[k] / 7 for k in range(5)])
    assert distribution.sum(axis=1) == pytest.approx(np.ones(30))


def test_taxicab_score_is_bounded_and_zero_for_identical_populations():
    rng = np.random.default_rng(1)
    dense, compressed = rng.integers(0, 4, size=(5, 50)), rng.integers(0, 4, size=(5, 50))
    _, score = find_cie(dense, compressed, 4)
    assert ((score >= 0) & (score <= 2 + 1e-12)).all()
    assert find_cie(dense, dense, 4)[1].tolist() == [0.0] * 50


def test_cie_table_columns_and_the_max_over_levels():
    table = cie_table(np.array(["a", "b", "c", "d"]), DENSE, {"p50": COMPRESSED, "p90": DENSE}, 3)
    assert {"is_cie_p50", "cie_score_p50", "is_cie_p90", "cie_score_p90", "cie_score"} <= set(table.columns)
    assert [c for c in table.columns if c.endswith("_score")] == ["cie_score"]
    assert table["cie_score"].tolist() == pytest.approx([0.0, 2 / 3, 4 / 3, 4 / 3])
    assert not table["is_cie_p90"].any()


def test_mismatched_populations_are_rejected():
    with pytest.raises(ValueError, match="cover"):
        find_cie(DENSE, COMPRESSED[:, :3], 3)


def test_out_of_sample_cie_ignore_every_prediction_of_a_model_that_trained_on_the_row():
    """Poison every (model, row) pair where the model trained on the row: the CIE table must not change."""
    rng = np.random.default_rng(0)
    dense, compressed = rng.integers(0, 3, (6, 40)), rng.integers(0, 3, (6, 40))
    held_out = rng.random((6, 40)) < 0.5
    held_out[0] = True  # every row held out by at least one model
    labels = rng.integers(0, 3, 40)
    clean = cie_table(np.arange(40), dense, {"p90": compressed}, 3, held_out, labels)
    poisoned_dense, poisoned_compressed = dense.copy(), compressed.copy()
    poisoned_dense[~held_out] = (dense[~held_out] + 1) % 3
    poisoned_compressed[~held_out] = (compressed[~held_out] + 2) % 3
    poisoned = cie_table(np.arange(40), poisoned_dense, {"p90": poisoned_compressed}, 3, held_out, labels)
    pd.testing.assert_frame_equal(clean, poisoned)
    assert (clean["oos_models"] == held_out.sum(axis=0)).all()
    assert clean["dense_oos_accuracy"].to_numpy() == pytest.approx(((dense == labels) * held_out).sum(axis=0) / held_out.sum(axis=0))


def test_out_of_sample_distribution_by_hand():
    # row 0 held out by models 0 and 2 only: dense labels 1, 2 -> P = (0, 1/2, 1/2)
    predictions = np.array([[1, 0], [0, 0], [2, 0]])
    held_out = np.array([[True, True], [False, True], [True, True]])
    assert label_distribution(predictions, 3, held_out)[0] == pytest.approx([0, 0.5, 0.5])
