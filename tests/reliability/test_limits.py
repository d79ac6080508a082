"""Input limits: features are judged in float32 (the dtype the model reads), images above
data.max_image_pixels are quarantined from their header before any decoding, and the CSV reader's
cost grows linearly with the number of columns."""

from __future__ import annotations

import collections
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from exemplar.data.config import DataConfig
from exemplar.data.loaders import ingest_in_memory


def test_a_feature_finite_in_float64_but_not_float32_is_quarantined(tmp_path):
    frame = pd.DataFrame({"label": [0, 1] * 10, "x": np.arange(20, dtype=float), "y": 1.0})
    frame.loc[3, "x"] = 1e308
    frame.loc[5, "y"] = -1e39
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    dataset, quarantine, summary = ingest_in_memory(DataConfig(kind="parquet", path=str(path)))
    assert sorted(quarantine["id"]) == ["row-0000003", "row-0000005"]
    assert set(quarantine["reason"]) == {"non_finite_feature"} and quarantine["detail"].str.contains("float32").all()
    assert np.isfinite(dataset.table[["x", "y"]].to_numpy(dtype=np.float32)).all()


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 7).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_above_the_pixel_limit_is_quarantined_without_decoding(tmp_path, monkeypatch):
    rows = [{"label": i % 2, "image": _png(8, 8)} for i in range(10)] + [{"label": 0, "image": _png(64, 40)}]
    path = tmp_path / "images.parquet"
    pd.DataFrame(rows).to_parquet(path)
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: (decoded.append(self.size), real_load(self))[1])
    dataset, quarantine, _ = ingest_in_memory(DataConfig(kind="parquet", path=str(path), max_image_pixels=1000))
    assert list(quarantine["reason"]) == ["image_too_large"] and "64x40 = 2,560 pixels" in quarantine["detail"].iat[0]
    assert (64, 40) not in decoded and len(dataset.table) == 10
    assert dataset.info.input_shape == (1, 8, 8)  # the big image decided neither the size nor the colour


def _wide_csv(path, columns: int, rows: int = 20) -> None:
    values = np.random.default_rng(0).normal(size=(rows, columns)).round(3)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(columns)])
    frame.insert(0, "label", np.arange(rows) % 2)
    frame.to_csv(path, index=False)


def test_csv_cells_are_parsed_in_a_constant_number_of_calls_whatever_the_column_count(tmp_path, monkeypatch):
    """The reader used to parse each column with its own pandas call; the cost per column now is one
    cheap Arrow conversion, and parsing is one call per batch (counted, not timed)."""
    import exemplar.data.csv_input as csv_input

    calls = {}
    real = csv_input.pd.to_numeric
    for columns in (50, 2_000):
        _wide_csv(tmp_path / f"w{columns}.csv", columns)
        count = [0]
        monkeypatch.setattr(csv_input.pd, "to_numeric", lambda *a, **k: (count.__setitem__(0, count[0] + 1), real(*a, **k))[1])
        dataset, _, _ = ingest_in_memory(DataConfig(kind="csv", path=str(tmp_path / f"w{columns}.csv")))
        monkeypatch.setattr(csv_input.pd, "to_numeric", real)
        calls[columns] = count[0]
        assert len(dataset.info.feature_names) == columns
    assert calls[2_000] == calls[50] <= 4, calls


def _mixed_wide_csv(path, columns: int, rows: int = 12) -> None:
    """`columns` numeric columns (one with a stray word) plus a text and a true/false column."""
    values = np.random.default_rng(0).normal(size=(rows, columns)).round(3).astype(object)
    values[3, 1] = "oops"
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(columns)])
    frame.insert(0, "label", np.arange(rows) % 2)
    frame["colour"], frame["flag"] = ["red", "blue", ""] * (rows // 3), ["true", "false"] * (rows // 2)
    frame.to_csv(path, index=False)


def _counted_ingest(path, monkeypatch) -> collections.Counter:
    """Ingest `path`, counting pandas column look-ups, Series built, CSV opens and every Python call."""
    import sys

    import pyarrow.csv as pacsv

    counts = collections.Counter()
    for owner, name in ((pd.DataFrame, "__getitem__"), (pd.Series, "__init__"), (pacsv, "open_csv")):
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _real=real, _key=name, **k: (counts.update([_key]), _real(*a, **k))[1])

    def profile(frame, event, arg):
        if event == "call":
            counts["python calls"] += 1

    sys.setprofile(profile)
    try:
        ingest_in_memory(DataConfig(kind="csv", path=str(path)))
    finally:
        sys.setprofile(None)
        monkeypatch.undo()
    return counts


def test_csv_ingest_does_no_per_column_work_in_python(tmp_path, monkeypatch):
    """Linear in columns, checked by counting (never timing): a CSV with 9 times the columns makes
    no more pandas look-ups, Series or file opens, and fewer than 10 more Python calls per added
    column (the reader used to make about 560, one pandas Series at a time: a 100,000-column file
    took minutes and GBs)."""
    counts = {}
    for columns in (40, 400):
        _mixed_wide_csv(tmp_path / f"w{columns}.csv", columns)
        ingest_in_memory(DataConfig(kind="csv", path=str(tmp_path / f"w{columns}.csv")))  # imports and caches warm
        counts[columns] = _counted_ingest(tmp_path / f"w{columns}.csv", monkeypatch)
    narrow, wide = counts[40], counts[400]
    assert {k: wide[k] for k in ("__getitem__", "__init__", "open_csv")} == {k: narrow[k] for k in ("__getitem__", "__init__", "open_csv")}, (narrow, wide)
    assert narrow["open_csv"] <= 3  # first block (column types), the keys pass, the data pass
    assert (wide["python calls"] - narrow["python calls"]) / 360 < 10, (narrow["python calls"], wide["python calls"])
