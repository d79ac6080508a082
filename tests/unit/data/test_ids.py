"""Duplicate ids from 64-bit hashes: exact (a hash collision never makes a duplicate), first row kept,
and the same answer as a plain dict over the id strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exemplar.data.growing import GrowingArray, bincount
from exemplar.data.ids import DuplicateIds, find_duplicate_ids, id_hashes, is_one_of, repeated_values
from exemplar.data.loaders import ingest_in_memory, open_reader
from exemplar.data.scan import scan
from tests.unit.data.makers import config, tiny_table


def _reference(ids: list[str]) -> dict[int, int]:
    first: dict[str, int] = {}
    return {row: first[i] for row, i in enumerate(ids) if first.setdefault(i, row) != row}


def _batches(ids: list[str], size: int):
    return (pd.Series(ids[start : start + size], dtype=object) for start in range(0, len(ids), size))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "dd", "e1", "r007", ""]), max_size=40), st.integers(1, 7))
def test_same_duplicates_as_a_dict_of_strings(ids, batch_size):
    found = find_duplicate_ids(id_hashes(pd.Series(ids, dtype=object)), _batches(ids, batch_size))
    assert found.as_dict() == _reference(ids)
    assert np.all(np.diff(found.rows) > 0)


def _length_hash(ids: pd.Series) -> np.ndarray:
    """A deliberately weak hash (the id's length) that makes different ids collide."""
    return ids.str.len().to_numpy(dtype=np.uint64)


def test_a_hash_collision_between_different_ids_is_not_a_duplicate():
    ids = ["alpha", "beta", "gamma", "beta", "delta", "omega", "gamma"]  # 5-letter ids all collide
    hashes = _length_hash(pd.Series(ids, dtype=object))
    found = find_duplicate_ids(hashes, _batches(ids, 2), hash_ids=_length_hash)
    assert found.as_dict() == {3: 1, 6: 2}


def test_ids_are_read_again_only_when_a_hash_repeats():
    def no_second_read():
        raise AssertionError("the ids were read again although every hash is distinct")
        yield  # pragma: no cover

    hashes = id_hashes(pd.Series(["a", "b", "c"], dtype=object))
    assert len(find_duplicate_ids(hashes, no_second_read())) == 0


def test_hashes_are_equal_for_equal_ids_and_stable():
    hashes = id_hashes(pd.Series(["x", "y", "x"], dtype=object))
    assert hashes.dtype == np.uint64 and hashes[0] == hashes[2] != hashes[1]
    np.testing.assert_array_equal(hashes, id_hashes(pd.Series(["x", "y", "x"], dtype=object)))


def test_repeated_values_and_membership():
    hashes = np.array([5, 1, 5, 3, 1, 5], dtype=np.uint64)
    repeated = repeated_values(hashes)
    np.testing.assert_array_equal(repeated, [1, 5])
    np.testing.assert_array_equal(is_one_of(np.array([0, 1, 2, 5, 9], dtype=np.uint64), repeated), [False, True, False, True, False])
    assert not is_one_of(np.array([1], dtype=np.uint64), np.zeros(0, dtype=np.uint64)).any()


def test_duplicate_lookup():
    found = DuplicateIds(np.array([3, 8]), np.array([1, 2]))
    assert 8 in found and 4 not in found and found[8] == 2 and found[3] == 1


def test_scan_keeps_few_bytes_per_row(tmp_path):
    frame = tiny_table(rows=40)
    frame.loc[30, "id"] = "r004"
    frame.to_parquet(tmp_path / "t.parquet")
    plan = scan(open_reader(config("parquet", tmp_path / "t.parquet")), config("parquet", tmp_path / "t.parquet"))
    assert (plan.problems.dtype, plan.codes.dtype, plan.splits.dtype) == (np.int8, np.int32, np.int8)
    assert plan.first_of.as_dict() == {30: 4}


def test_duplicate_detail_names_the_first_row(tmp_path):
    frame = tiny_table(rows=15)
    frame.loc[11, "id"] = "r003"
    frame.to_csv(tmp_path / "t.csv", index=False)
    quarantine = ingest_in_memory(config("csv", tmp_path / "t.csv"))[1]
    assert quarantine["detail"].tolist() == ["id 'r003' was first used by input row 3"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 5), max_size=9), max_size=6), st.integers(0, 20))
def test_growing_array_holds_what_was_appended(pieces, capacity):
    column = GrowingArray(np.int32, capacity)
    for piece in pieces:
        column.append(np.array(piece, dtype=np.int32))
    expected = np.array([v for piece in pieces for v in piece], dtype=np.int32)
    result = column.finish()
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_chunked_bincount_equals_numpy(chunk):
    values = np.random.default_rng(0).integers(0, 7, 50).astype(np.int32)
    np.testing.assert_array_equal(bincount(values, 9, chunk), np.bincount(values, minlength=9))
