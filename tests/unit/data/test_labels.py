"""Raw labels -> contiguous codes and class names (hand-derived cases)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exemplar.data.labels import MISSING, LabelCollector, label_key


@pytest.mark.parametrize(
    "value, key",
    [(3, ("num", 3)), (3.0, ("num", 3)), ("3", ("num", 3)), (" 2.5 ", ("num", 2.5)), (np.int16(4), ("num", 4)),
     ("cat", ("text", "cat")), (b"dog", ("text", "dog")), (None, None), (float("nan"), None), ("", None), ("NaN", None)],
)
def test_label_key(value, key):
    assert label_key(value) == key


def _resolve(batches, label_names=None):
    collector = LabelCollector(label_names)
    temp = np.concatenate([collector.add(pd.Series(b, dtype=object)) for b in batches])
    counts = np.bincount(temp[temp >= 0], minlength=len(collector.keys))
    mapping, names = collector.resolve(counts)
    return np.where(temp >= 0, mapping[np.maximum(temp, 0)], -1), names, temp


def test_numbers_are_ordered_numerically_across_batches():
    codes, names, _ = _resolve([["10", 2], [1, "2", 10.0]])
    assert names == ["1", "2", "10"] and codes.tolist() == [2, 1, 0, 1, 2]


def test_text_is_ordered_by_name_and_missing_stays_missing():
    codes, names, temp = _resolve([["dog", None, "cat", "dog"]])
    assert names == ["cat", "dog"] and codes.tolist() == [1, -1, 0, 1] and temp[1] == MISSING


def test_text_in_a_mostly_numeric_column_is_invalid():
    codes, names, _ = _resolve([[0, 1, 1, "oops", 0]])
    assert names == ["0", "1"] and codes.tolist() == [0, 1, 1, -1, 0]


def test_numbers_in_a_mostly_text_column_are_names():
    _, names, _ = _resolve([["cat", "dog", 7, "cat"]])
    assert names == ["7", "cat", "dog"]


def test_label_names_give_order_and_names():
    codes, names, _ = _resolve([[3, 1, 9, 1]], label_names=["a", "b", "c", "d"])
    assert names == ["b", "d"] and codes.tolist() == [1, 0, -1, 0]  # 9 is outside label_names
