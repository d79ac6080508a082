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


def test_rows_to_arrow_equals_pandas_conversion():
    """The block-wise conversion of canonical rows gives Arrow's own from_pandas result: NaN and None
    become nulls, infinities and text are kept, columns grouped by type in any order."""
    import pandas as pd
    import pyarrow as pa

    from exemplar.data.canonical import DatasetInfo, arrow_schema, rows_to_arrow

    info = DatasetInfo("table", ["a", "b"], feature_names=["x", "c", "y", "f"], feature_types=["numeric", "categorical", "numeric", "boolean"])
    frame = pd.DataFrame({
        "id": ["r0", "r1", "r2"], "label": np.array([0, 1, 0]), "label_name": ["a", "b", "a"], "split": ["train", "test", "train"],
        "content_hash": ["h0", "h1", "h2"], "x": [1.5, np.nan, np.inf], "c": pd.Series(["u", None, "w"], dtype=object),
        "y": [-0.0, 2.0, np.nan], "f": pd.Series([True, None, False], dtype=object),
    })
    schema = arrow_schema(info)
    expected = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    assert rows_to_arrow(frame, schema).equals(expected)
    assert rows_to_arrow(frame[frame.columns[::-1]], schema).equals(expected)
    assert rows_to_arrow(frame.iloc[:0], schema).equals(expected.slice(0, 0))
