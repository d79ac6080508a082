"""Pruning policies: exact quotas, class balance, minimum per class, directions, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exemplar.errors import ExemplarError
from exemplar.pruning.config import PruneConfig
from exemplar.pruning.policy import (
    apply_policy, check_prune_settings, check_score_ids, keep_count, proportional_quotas, random_scores, select_rows,
)

NAMES = ["a", "b", "c"]


def _rows(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return np.random.default_rng(seed).random(len(labels)), labels


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=2, max_size=6), st.floats(0.05, 1.0), st.integers(0, 3), st.booleans())
def test_quotas_are_exact_and_floors_hold(sizes, fraction, floor, balanced):
    scores, labels = _rows(sizes)
    total = keep_count(len(labels), fraction, None)
    floors = np.minimum(np.array(sizes), floor)
    config = PruneConfig(fraction_kept=fraction, class_balanced=balanced, min_per_class=floor, keep="hard")
    if total < 1 or floors.sum() > total or len(labels) == 0:
        with pytest.raises(ExemplarError):
            select_rows(scores, labels, config, len(sizes), [str(i) for i in range(len(sizes))])
        return
    try:
        keep = select_rows(scores, labels, config, len(sizes), [str(i) for i in range(len(sizes))])
    except ExemplarError as error:  # only a global quota with no floor may empty a class
        assert "every training row of class" in str(error) and (floor == 0)
        return
    kept = np.bincount(labels[keep], minlength=len(sizes))
    assert keep.sum() == total
    assert (kept >= floors).all() and (kept <= np.array(sizes)).all()


def test_class_balanced_keeps_the_same_fraction_per_class():
    scores, labels = _rows([40, 20, 10])
    keep = select_rows(scores, labels, PruneConfig(fraction_kept=0.5), 3, NAMES)
    assert np.bincount(labels[keep]).tolist() == [20, 10, 5]


def test_proportional_quotas_sum_exactly_and_respect_bounds():
    quotas = proportional_quotas(np.array([7, 7, 7]), 10, np.array([0, 0, 0]))
    assert quotas.sum() == 10 and sorted(quotas.tolist()) == [3, 3, 4]
    assert proportional_quotas(np.array([100, 1]), 10, np.array([2, 1])).tolist() == [9, 1]


def test_directions_keep_the_high_or_the_low_scores():
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8])
    labels = np.array([0, 0, 0, 1, 1, 1])
    hard = select_rows(scores, labels, PruneConfig(fraction_kept=0.34, min_per_class=1), 2, ["x", "y"])
    easy = select_rows(scores, labels, PruneConfig(fraction_kept=0.34, min_per_class=1, keep="easy"), 2, ["x", "y"])
    top = select_rows(scores, labels, PruneConfig(fraction_kept=0.34, min_per_class=1, keep="drop_top"), 2, ["x", "y"])
    assert hard.tolist() == [True, False, False, False, False, True]  # class 0 keeps 0.9, class 1 keeps 0.8
    assert easy.tolist() == [False, True, False, False, True, False]
    assert (top == easy).all()


def test_global_quota_follows_the_ranking_then_lifts_classes_to_their_floor():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.65])
    labels = np.array([0, 0, 0, 0, 1, 1])
    top4 = select_rows(scores, labels, PruneConfig(count_kept=4, class_balanced=False, min_per_class=0), 2, ["x", "y"])
    assert top4.tolist() == [True, True, True, False, False, True]  # the 4 highest, whatever their class
    lifted = select_rows(scores, labels, PruneConfig(fraction_kept=0.5, class_balanced=False, min_per_class=1), 2, ["x", "y"])
    assert lifted.tolist() == [True, True, False, False, False, True]  # class y's best (0.65) replaces x's worst kept (0.7)


def test_a_class_emptied_by_a_global_quota_is_an_error():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2])
    labels = np.array([0, 0, 0, 0, 1, 1])
    with pytest.raises(ExemplarError, match=r"every training row of class\(es\) \['y'\].*min_per_class"):
        select_rows(scores, labels, PruneConfig(fraction_kept=0.5, class_balanced=False, min_per_class=0), 2, ["x", "y"])


def test_a_count_overrides_the_fraction():
    scores, labels = _rows([10, 10, 10])
    keep = select_rows(scores, labels, PruneConfig(count_kept=7, min_per_class=2), 3, NAMES)
    assert keep.sum() == 7 and (np.bincount(labels[keep]) >= 2).all()


@pytest.mark.parametrize(
    "settings_, message",
    [
        ({"fraction_kept": 0.0}, r"fraction_kept must lie in \(0, 1\]"),
        ({"fraction_kept": 1.5}, r"fraction_kept must lie in \(0, 1\]"),
        ({"count_kept": 0}, "count_kept must be >= 1"),
        ({"score": "el3n"}, "prune.score 'el3n' is not a known score.*el2n"),
        ({"keep": "middle"}, "prune.keep must be one of"),
        ({"scores_from": "/nonexistent/scores.parquet"}, "is not a file"),
    ],
)
def test_impossible_settings_fail_with_one_paragraph(settings_, message):
    with pytest.raises(ExemplarError, match=message):
        check_prune_settings(PruneConfig(**settings_))


def test_a_score_file_without_the_column_or_the_ids_fails(tmp_path):
    path = tmp_path / "scores.parquet"
    pd.DataFrame({"id": ["r0", "r1"], "el2n_score": [0.1, 0.2]}).to_parquet(path)
    check_prune_settings(PruneConfig(scores_from=str(path), score="el2n_score", fraction_kept=0.5))
    check_prune_settings(PruneConfig(scores_from=str(path), score="audit"))  # not pruning: the column is not needed
    with pytest.raises(ExemplarError, match=r"no column\(s\) \['audit_score'\]"):
        check_prune_settings(PruneConfig(scores_from=str(path), score="audit", fraction_kept=0.5))
    scores = pd.read_parquet(path).set_index("id")["el2n_score"]
    with pytest.raises(ExemplarError, match=r"for 2 of the 3 training row\(s\).*'r2', 'r3'"):
        check_score_ids(scores.iloc[:1], np.array(["r0", "r2", "r3"], dtype=object), str(path))


def test_apply_policy_masks_only_kept_training_rows_and_names_the_rule():
    table = pd.DataFrame({"id": [f"r{i}" for i in range(8)], "split": ["train"] * 6 + ["test"] * 2, "label": [0, 0, 0, 1, 1, 1, 0, 1]})
    mask = pd.DataFrame({"id": table["id"], "keep": [True] * 5 + [False] + [True] * 2,
                         "drop_reason": [""] * 5 + ["exact_duplicate"] + [""] * 2})
    scores = pd.Series([0.1, 0.9, 0.5, 0.4, 0.8], index=pd.Index([f"r{i}" for i in range(5)], name="id"), name="el2n_score")
    out, summary = apply_policy(mask, table, scores, PruneConfig(count_kept=3, min_per_class=1), ["x", "y"])
    assert out["keep"].tolist() == [False, True, True, False, True, False, True, True]
    assert out["drop_reason"].tolist() == ["pruned_el2n_hard", "", "", "pruned_el2n_hard", "", "exact_duplicate", "", ""]
    assert np.isnan(out["prune_value"].iloc[5]) and out["prune_value"].iloc[1] == 0.9
    assert summary["kept"] == 3 and summary["dropped_per_class"] == {"x": 1, "y": 1}
    assert mask["keep"].tolist()[0]  # the input mask is not modified


def test_random_scores_are_seeded():
    ids = np.array(["a", "b", "c"], dtype=object)
    assert random_scores(ids, 1).equals(random_scores(ids, 1)) and not random_scores(ids, 1).equals(random_scores(ids, 2))
