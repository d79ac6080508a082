"""Input limits: features are judged in float32 (the dtype the model reads), images above
data.max_image_pixels are quarantined from their header before any decoding, and the CSV reader's
cost grows linearly with the number of columns."""

from __future__ import annotations

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
