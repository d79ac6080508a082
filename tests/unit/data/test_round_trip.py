"""The same images given as Parquet, an image folder and an .npz give identical canonical tables."""

from __future__ import annotations

import pandas as pd
import pytest

from exemplar.data.canonical import pixel_array
from exemplar.data.loaders import ingest_in_memory
from tests.unit.data.makers import config, tiny_images, write_image_folder, write_image_npz, write_image_parquet


@pytest.mark.parametrize("channels", [1, 3])
def test_parquet_folder_and_npz_give_identical_tables(tmp_path, channels):
    data = tiny_images(channels=channels)
    inputs = {
        "parquet": write_image_parquet(tmp_path / "d.parquet", data),
        "image_folder": write_image_folder(tmp_path / "folder", data),
        "npz": write_image_npz(tmp_path / "d.npz", data),
    }
    results = {kind: ingest_in_memory(config(kind, path)) for kind, path in inputs.items()}
    reference, _, _ = results["parquet"]
    for kind, (dataset, quarantine, summary) in results.items():
        assert len(quarantine) == 0, kind
        pd.testing.assert_frame_equal(dataset.table, reference.table, obj=kind)
        assert dataset.info.class_names == ["cat", "dog"] and dataset.info.image_shape == [channels, 6, 5]
        assert summary["hash"] == results["parquet"][2]["hash"]
    assert (pixel_array(reference) == data["pixels"]).all()  # decoded once, losslessly
    assert reference.table["id"].tolist() == data["ids"]
    assert reference.table["split"].tolist() == data["splits"].tolist()


def test_ids_and_hash_are_stable_across_reruns(tmp_path):
    folder = write_image_folder(tmp_path / "folder", tiny_images())
    first, second = ingest_in_memory(config("image_folder", folder)), ingest_in_memory(config("image_folder", folder))
    pd.testing.assert_frame_equal(first[0].table, second[0].table)
    assert first[2]["hash"] == second[2]["hash"]


def test_batch_size_does_not_change_the_table(tmp_path):
    path = write_image_parquet(tmp_path / "d.parquet", tiny_images(per_class=5))
    whole = ingest_in_memory(config("parquet", path))[0].table
    streamed = ingest_in_memory(config("parquet", path, batch_rows=3))[0].table
    pd.testing.assert_frame_equal(whole, streamed)
