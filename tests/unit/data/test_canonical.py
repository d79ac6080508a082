"""Canonical table invariants: the dataset hash, the Arrow round trip, the restricted unpickler."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from exemplar.data.canonical import DatasetHasher, dataset_hash, from_arrow, to_arrow
from exemplar.data.cifar import RestrictedUnpickler
from exemplar.data.digits import load_digits_dataset


def test_dataset_hash_ignores_row_order_and_sees_any_change():
    table = load_digits_dataset(limit=60).table
    assert dataset_hash(table) == dataset_hash(table.sample(frac=1, random_state=0))
    changed = table.copy()
    changed.loc[5, "label"] = (changed.loc[5, "label"] + 1) % 10
    assert dataset_hash(changed) != dataset_hash(table)
    halves = DatasetHasher().update(table.iloc[:25]).update(table.iloc[25:]).hexdigest()
    assert halves == dataset_hash(table)


def test_arrow_round_trip_keeps_info():
    dataset = load_digits_dataset(limit=30)
    back = from_arrow(to_arrow(dataset))
    assert back.info == dataset.info and back.table.equals(dataset.table)


def test_restricted_unpickler_loads_numpy_but_not_other_globals():
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    for protocol in (2, 4):
        loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps({"data": array}, protocol=protocol))).load()
        np.testing.assert_array_equal(loaded["data"], array)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load 'os.system'"):
        RestrictedUnpickler(io.BytesIO(b"cos\nsystem\n(S'true'\ntR.")).load()
