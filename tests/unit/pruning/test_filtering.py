"""The filter stage's mask and summary on small hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exemplar.data.canonical import Dataset, DatasetInfo, feature_table
from exemplar.errors import ExemplarError
from exemplar.pruning.config import PruneConfig
from exemplar.pruning.dedup import label_disagreement
from exemplar.pruning.filtering import filter_dataset


def _dataset(features: list[list[float]], labels: list[int], splits: list[str], names: tuple[str, ...] = ("x", "y")) -> Dataset:
    frame = pd.DataFrame(features, columns=["a", "b"])
    ids = [f"r{i}" for i in range(len(labels))]
    table = feature_table(ids, np.array(labels), list(names), splits, frame)
    return Dataset(table, DatasetInfo("table", list(names), feature_names=["a", "b"], source="test"))


# rows: r0/r1 train x, r2/r3 train y, r4 = exact copy of r0 in test, r5 = exact copy of r2 labelled x (conflict),
# r6 nearly r3 (test), r7 a distinct test row.
FEATURES = [[1, 0], [0, 1], [-1, 0], [0, -1], [1, 0], [-1, 0], [0.01, -1], [1, 1]]
LABELS = [0, 0, 1, 1, 0, 0, 1, 0]
SPLITS = ["train"] * 4 + ["test"] * 4


def test_exact_duplicates_leaks_and_conflicts():
    mask, summary = filter_dataset(_dataset(FEATURES, LABELS, SPLITS), PruneConfig(near_duplicate_threshold=0.999))
    assert mask["keep"].tolist() == [True, True, True, True, False, False, True, True]
    assert mask["duplicate_of"].tolist()[4:6] == ["r0", "r2"]
    assert mask["is_label_conflict"].tolist() == [False, False, True, False, False, True, False, False]
    assert mask["label_disagreement"].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # r2/r5: a pair that disagrees
    assert summary["split_leakage"]["exact_test_rows"] == 2 and summary["split_leakage"]["near_test_rows"] == 1
    assert mask["is_split_leak"].tolist() == [True, False, True, True, True, True, True, False]
    assert summary["near_duplicates"]["groups_listed"] == [["r3", "r6"]]
    assert summary["class_balance"]["train"] == {"x": 2, "y": 2} and summary["class_balance"]["imbalance_ratio"] == 1.0


def test_near_duplicates_are_dropped_only_when_configured():
    data = _dataset(FEATURES, LABELS, SPLITS)
    kept = filter_dataset(data, PruneConfig(near_duplicate_threshold=0.999))[0]
    dropped, summary = filter_dataset(data, PruneConfig(near_duplicate_threshold=0.999, drop_near_duplicates=True))
    assert kept.loc[6, "keep"] and not dropped.loc[6, "keep"]
    assert dropped.loc[6, ["drop_reason", "duplicate_of"]].tolist() == ["near_duplicate", "r3"]
    assert summary["dropped_by_reason"] == {"exact_duplicate": 2, "near_duplicate": 1}


def test_switches_off():
    mask, summary = filter_dataset(_dataset(FEATURES, LABELS, SPLITS), PruneConfig(drop_exact_duplicates=False, find_near_duplicates=False))
    assert mask["keep"].all() and summary["near_duplicates"]["searched"] is False
    assert summary["exact_duplicates"]["copies"] == 2  # still reported


def test_class_without_training_rows_after_filtering():
    # r1 (x) is an exact copy of r0 (y): dropped, so x keeps only its test row
    features = [[1, 0], [1, 0], [0, 1], [0, 2], [5, 5], [7, 7]]
    with pytest.raises(ExemplarError, match=r"class\(es\) 'x' \(0\) have no training rows"):
        filter_dataset(_dataset(features, [1, 0, 1, 2, 0, 2], ["train"] * 4 + ["test", "train"], ("x", "y", "z")), PruneConfig())


def test_a_class_gone_from_the_data_is_not_a_class_without_training_rows():
    """A reviewer relabelled the only row of a mistyped class 'z': the class has no rows at all, so the
    rerun goes on (a class with test rows but none in training still stops it, above)."""
    features = [[1, 0], [1, 1], [0, 1], [0, 2], [5, 5], [7, 7]]
    mask, _ = filter_dataset(_dataset(features, [0, 0, 1, 1, 0, 1], ["train"] * 4 + ["test"] * 2, ("x", "y", "z")), PruneConfig())
    assert mask["keep"].all()


def test_one_training_row_left_by_filtering_is_kept():
    features = [[1, 0], [1, 0], [0, 1], [0, 2], [5, 5]]
    mask, _ = filter_dataset(_dataset(features, [0, 0, 1, 1, 0], ["train"] * 4 + ["test"]), PruneConfig())
    assert mask["keep"].tolist() == [True, False, True, True, True]


def test_config_validation():
    with pytest.raises(ExemplarError, match="near_duplicate_threshold"):
        PruneConfig(near_duplicate_threshold=1.5).validate()
    with pytest.raises(ExemplarError, match="find_near_duplicates"):
        PruneConfig(find_near_duplicates=False, drop_near_duplicates=True).validate()


def test_label_disagreement_outvoted_row_carries_the_evidence():
    """Hand-derived: a group of four identical inputs labelled a, a, a, b -> the b row 3/3, each a row 1/3;
    a unanimous pair 0; a single row 0."""
    hashes = pd.Series(["g", "g", "g", "g", "p", "p", "s"])
    labels = pd.Series([0, 0, 0, 1, 2, 2, 1])
    assert label_disagreement(hashes, labels).tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.0, 0.0, 0.0])


def test_label_disagreement_matches_a_reference_loop():
    rng = np.random.default_rng(0)
    hashes = pd.Series(rng.integers(0, 30, size=200).astype(str))
    labels = pd.Series(rng.integers(0, 3, size=200))
    expected = []
    for i in range(len(hashes)):
        others = [j for j in range(len(hashes)) if j != i and hashes[j] == hashes[i]]
        expected.append(sum(labels[j] != labels[i] for j in others) / len(others) if others else 0.0)
    assert label_disagreement(hashes, labels) == pytest.approx(np.array(expected))
