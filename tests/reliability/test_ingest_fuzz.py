"""Hypothesis fuzzing of ingestion: random bytes, random CSV text and random Parquet schemas must each end
in a dataset, a quarantine with a reason per row, or an ExemplarError (one paragraph) — never another
exception and never a hang (bounded examples, a deadline per example)."""

from __future__ import annotations

import datetime
import string

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exemplar.data.config import DataConfig
from exemplar.data.loaders import ingest_in_memory
from exemplar.data.quarantine import REASONS
from exemplar.errors import ExemplarError

FUZZ = settings(max_examples=25, deadline=datetime.timedelta(seconds=20), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=True)


def _ingest_or_clear_error(config: DataConfig) -> None:
    """The property: a result whose every quarantined row has a known reason, or an ExemplarError."""
    try:
        dataset, quarantine, summary = ingest_in_memory(config)
    except ExemplarError as error:
        message = str(error)
        assert message and "Traceback" not in message
        return
    assert set(quarantine["reason"]) <= set(REASONS)
    assert summary["rows_read"] == len(dataset.table) + len(quarantine)
    assert dataset.table["id"].is_unique


@FUZZ
@given(data=st.binary(max_size=2048), kind=st.sampled_from(["csv", "parquet", "npz"]))
def test_random_bytes(tmp_path_factory, data, kind):
    path = tmp_path_factory.mktemp("bytes") / f"input.{kind}"
    path.write_bytes(data)
    _ingest_or_clear_error(DataConfig(kind=kind, path=str(path)))


CELL = st.one_of(
    st.integers(-5, 5).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr), st.just(""),
    st.text(alphabet=string.ascii_letters + ' ,"\n\t;', max_size=6), st.just("1e308"), st.just("-1e39"),
)


@FUZZ
@given(
    header=st.lists(st.sampled_from(["label", "id", "split", "x", "y", "z", "image", "label"]), min_size=1, max_size=5),
    rows=st.lists(st.lists(CELL, min_size=0, max_size=6), max_size=30),
)
def test_random_csv(tmp_path_factory, header, rows):
    path = tmp_path_factory.mktemp("csv") / "input.csv"
    path.write_text(",".join(header) + "\n" + "".join(",".join(row) + "\n" for row in rows))
    _ingest_or_clear_error(DataConfig(kind="csv", path=str(path)))


def _column(draw, kind: str, n: int) -> pa.Array:
    if kind == "int":
        return pa.array(draw(st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=n, max_size=n)), pa.int64())
    if kind == "float":
        return pa.array(draw(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), min_size=n, max_size=n)), pa.float64())
    if kind == "text":
        return pa.array(draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "train", "test", ""])), min_size=n, max_size=n)))
    if kind == "bool":
        return pa.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if kind == "bytes":
        return pa.array(draw(st.lists(st.one_of(st.none(), st.binary(max_size=40)), min_size=n, max_size=n)), pa.binary())
    return pa.array([[1.0, 2.0]] * n)  # a list column


@st.composite
def parquet_tables(draw) -> pa.Table:
    n = draw(st.integers(0, 25))
    names = draw(st.lists(st.sampled_from(["label", "id", "split", "image", "x", "y", "z"]), min_size=1, max_size=5, unique=True))
    kinds = ["int", "float", "text", "bool", "bytes", "list"]
    return pa.table({name: _column(draw, draw(st.sampled_from(kinds)), n) for name in names})


@FUZZ
@given(table=parquet_tables())
def test_random_parquet_schemas(tmp_path_factory, table):
    path = tmp_path_factory.mktemp("parquet") / "input.parquet"
    pq.write_table(table, path)
    _ingest_or_clear_error(DataConfig(kind="parquet", path=str(path)))


@pytest.mark.parametrize("value", [1e308, -3.5e38])
def test_a_single_bad_feature_value_is_quarantined_not_fatal(tmp_path, value):
    table = pa.table({"label": [0, 1] * 6, "x": [float(i) for i in range(11)] + [value]})
    pq.write_table(table, tmp_path / "t.parquet")
    dataset, quarantine, _ = ingest_in_memory(DataConfig(kind="parquet", path=str(tmp_path / "t.parquet")))
    assert list(quarantine["reason"]) == ["non_finite_feature"] and len(dataset.table) == 11


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_missing_feature_value_is_kept_for_imputation(tmp_path, value):
    table = pa.table({"label": [0, 1] * 6, "x": [float(i) for i in range(11)] + [value]})
    pq.write_table(table, tmp_path / "t.parquet")
    dataset, quarantine, _ = ingest_in_memory(DataConfig(kind="parquet", path=str(tmp_path / "t.parquet")))
    assert len(quarantine) == 0 and len(dataset.table) == 12
