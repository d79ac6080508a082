"""Each input kind on small generated data gives the expected canonical table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from exemplar.data.canonical import input_array, pixel_array
from exemplar.data.digits import load_digits_dataset
from exemplar.data.loaders import ingest_in_memory, load_dataset
from tests.unit.data.makers import config, png_bytes, tiny_images, tiny_table, write_cifar, write_image_folder


def test_digits_is_the_default_and_unchanged():
    dataset = load_dataset(config("digits", limit=200))
    pd.testing.assert_frame_equal(dataset.table, load_digits_dataset(limit=200).table)


def test_parquet_features_keep_names_and_values(tmp_path):
    frame = tiny_table()
    frame.to_parquet(tmp_path / "t.parquet")
    dataset = load_dataset(config("parquet", tmp_path / "t.parquet"))
    assert dataset.info.modality == "table" and dataset.info.feature_names == ["f0", "f1", "f2"]
    assert dataset.table["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(dataset.table[["f0", "f1", "f2"]].to_numpy(), frame[["f0", "f1", "f2"]].to_numpy())
    assert set(dataset.table["split"]) == {"train", "test"}
    train = (dataset.table["split"] == "train").to_numpy()
    inputs = input_array(dataset)  # the model sees the features standardised on the training rows
    np.testing.assert_allclose(inputs[train].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(inputs[train].std(axis=0), 1.0, atol=1e-5)


def test_parquet_folder_numbers_rows_across_files(tmp_path):
    frame = tiny_table(rows=12).drop(columns="id")
    frame.iloc[:6].to_parquet(tmp_path / "part-0.parquet")
    frame.iloc[6:].to_parquet(tmp_path / "part-1.parquet")
    dataset, _, summary = ingest_in_memory(config("parquet", tmp_path, feature_columns=["f0", "f1"]))
    assert dataset.table["id"].tolist() == [f"row-{i:07d}" for i in range(12)]
    assert dataset.info.feature_names == ["f0", "f1"] and summary["rows_read"] == 12


def test_parquet_images_as_hugging_face_structs(tmp_path):
    data = tiny_images(channels=3)
    pd.DataFrame({"label": data["labels"], "img": [{"bytes": png_bytes(p), "path": None} for p in data["pixels"]]}).to_parquet(tmp_path / "hf.parquet")
    dataset = load_dataset(config("parquet", tmp_path / "hf.parquet", image_column="img"))
    assert (pixel_array(dataset) == data["pixels"]).all()


def test_csv_features_with_custom_columns(tmp_path):
    frame = tiny_table().rename(columns={"label": "target", "id": "key"})
    frame["target"] = frame["target"].map({0: "ant", 1: "bee", 2: "cow"})
    frame.to_csv(tmp_path / "t.csv", index=False)
    dataset = load_dataset(config("csv", tmp_path / "t.csv", label_column="target", id_column="key"))
    assert dataset.info.class_names == ["ant", "bee", "cow"]
    assert dataset.table["id"].tolist() == frame["key"].tolist()
    assert dataset.table["label_name"].tolist() == frame["target"].tolist()
    np.testing.assert_allclose(dataset.table[["f0", "f1", "f2"]].to_numpy(), frame[["f0", "f1", "f2"]].to_numpy())


@pytest.mark.parametrize("delimiter, encoding", [(";", "cp1252"), ("tab", "latin-1"), ("|", "utf-8")])
def test_csv_with_another_separator_and_encoding_reads_as_the_plain_one(tmp_path, delimiter, encoding):
    """A spreadsheet export (semicolons, Windows code page, a separator inside a quoted cell) gives the
    same table as the comma-separated UTF-8 file."""
    frame = tiny_table(rows=9).assign(city=["Köln", "Zürich; CH", "Malmö"] * 3)
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.to_csv(tmp_path / "export.csv", index=False, sep="\t" if delimiter == "tab" else delimiter, encoding=encoding)
    plain = load_dataset(config("csv", tmp_path / "plain.csv")).table
    export = load_dataset(config("csv", tmp_path / "export.csv", delimiter=delimiter, text_encoding=encoding)).table
    pd.testing.assert_frame_equal(export, plain)
    assert export["city"].tolist() == frame["city"].tolist()


def test_common_split_names_are_read_as_train_and_test(tmp_path, caplog):
    """A validation or dev set is held out like a test set; the values read that way are counted and logged."""
    frame = tiny_table(rows=12)
    frame["split"] = ["train", "Training", "train", "train", "train", "train", "validation", "VAL", "dev", "test", "testing", "train"]
    frame.to_parquet(tmp_path / "t.parquet")
    dataset, quarantine, summary = ingest_in_memory(config("parquet", tmp_path / "t.parquet"))
    assert len(quarantine) == 0
    assert dataset.table["split"].tolist() == ["train"] * 6 + ["test"] * 5 + ["train"]
    assert summary["split_aliases"] == {"training": 1, "validation": 1, "val": 1, "dev": 1, "testing": 1}
    assert "'validation' (1 rows) is read as test" in caplog.text


def test_csv_of_image_paths(tmp_path):
    data = tiny_images()
    write_image_folder(tmp_path / "imgs", data)
    pd.DataFrame({"id": data["ids"], "path": [f"imgs/{i}" for i in data["ids"]], "label": data["labels"], "split": data["splits"]}).to_csv(tmp_path / "t.csv", index=False)
    dataset = load_dataset(config("csv", tmp_path / "t.csv", image_column="path"))
    assert (pixel_array(dataset) == data["pixels"]).all() and dataset.table["split"].tolist() == data["splits"].tolist()


@pytest.mark.parametrize("fmt, suffix", [("BMP", ".bmp"), ("GIF", ".gif"), ("WEBP", ".webp"), ("JPEG", ".jpg")])
def test_image_folder_formats_without_split_folders(tmp_path, fmt, suffix):
    rng = np.random.default_rng(1)
    for k in range(6):
        path = tmp_path / ("a" if k % 2 else "b") / f"{k}{suffix}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(png_bytes(rng.integers(0, 256, (3, 8, 8), dtype=np.uint8), fmt))
    dataset, quarantine, _ = ingest_in_memory(config("image_folder", tmp_path, test_fraction=0.34))
    assert len(dataset.table) == 6 and len(quarantine) == 0
    assert dataset.info.class_names == ["a", "b"] and dataset.info.image_shape == [3, 8, 8]
    assert sorted(dataset.table["split"].value_counts().tolist()) == [2, 4]  # stratified 1 test row per class


def test_npz_features_with_label_names(tmp_path):
    x = np.arange(24, dtype=np.float64).reshape(8, 3)
    np.savez(tmp_path / "t.npz", x=x, y=np.array([2, 0] * 4), label_names=np.array(["zero", "one", "two"]), feature_names=np.array(["a", "b", "c"]))
    dataset = load_dataset(config("npz", tmp_path / "t.npz"))
    assert dataset.info.class_names == ["zero", "two"]  # class 'one' never occurs
    assert dataset.table["label"].tolist() == [1, 0] * 4 and dataset.info.feature_names == ["a", "b", "c"]


def test_npz_channels_last_images(tmp_path):
    data = tiny_images(channels=3)
    np.savez(tmp_path / "t.npz", x=data["pixels"].transpose(0, 2, 3, 1), y=data["labels"])
    assert (pixel_array(load_dataset(config("npz", tmp_path / "t.npz"))) == data["pixels"]).all()


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_python_folder(tmp_path, classes):
    root = write_cifar(tmp_path / "cifar", classes=classes)
    dataset = load_dataset(config("cifar", root))
    assert dataset.info.class_names == ["class0", "class1"] and dataset.info.image_shape == [3, 32, 32]
    assert dataset.table["split"].value_counts().to_dict() == {"train": 6, "test": 6}
    first = "train:00000" if classes == 100 else "data_batch_1:00000"
    assert dataset.table["id"].iat[0] == first


def test_limit_reads_only_the_first_rows(tmp_path):
    tiny_table(rows=30).to_parquet(tmp_path / "t.parquet")
    dataset, _, summary = ingest_in_memory(config("parquet", tmp_path / "t.parquet", limit=12, batch_rows=5))
    assert summary["rows_read"] == 12 and dataset.table["id"].tolist() == [f"r{i:03d}" for i in range(12)]


def test_csv_of_several_blocks_keeps_every_row_in_order(tmp_path):
    """A CSV larger than one 1 MB block (its blocks joined into batches) gives the rows of the Parquet
    file with the same data, and a broken line in the middle is quarantined, not lost."""
    frame = tiny_table(rows=14_000, features=4)
    frame.to_parquet(tmp_path / "t.parquet")
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(9_000, "broken,line")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    assert (tmp_path / "t.csv").stat().st_size > 1 << 20  # two blocks, one batch
    from_csv, quarantine, summary = ingest_in_memory(config("csv", tmp_path / "t.csv", batch_rows=20_000))
    from_parquet = ingest_in_memory(config("parquet", tmp_path / "t.parquet"))[0]
    assert quarantine["id"].tolist() == ["invalid-line-0000000"] and summary["rows_read"] == 14_001
    pd.testing.assert_frame_equal(from_csv.table, from_parquet.table)


@pytest.mark.parametrize("count, size, expected", [(5, 2, [2, 2, 1]), (4, 2, [2, 2]), (1, 3, [1]), (0, 2, [])])
def test_csv_blocks_are_grouped_in_order(count, size, expected):
    from exemplar.data.csv_input import _grouped

    batches = [pa.record_batch({"x": [i]}) for i in range(count)]
    groups = list(_grouped(iter(batches), size))
    assert [len(g) for g in groups] == expected
    assert [b["x"][0].as_py() for g in groups for b in g] == list(range(count))


PLAIN_HEADERS = [b"label,x,y\n1,2,3\n", b'"label","x y","z"\r\n1,2,3\r\n', b'\xef\xbb\xbflabel,"a,b","say ""hi"""\n1,2,3\n',
                 b"\n\r\nlabel,x\r1,2\r", b"label,,x,\n1,2,3,4\n", "label,caf\u00e9,\u00fc\n1,2,3\n".encode()]
NOT_PLAIN = [b'label,"x\ny"\n1,2\n', b'label,x"y\n1,2\n', b'label, "x"\n1,2\n', b"label,\xff\n1,2\n", b"label,x"]


@pytest.mark.parametrize("data", PLAIN_HEADERS)
def test_csv_header_split_from_the_first_line_matches_arrow(tmp_path, data):
    """The header is split from its line (Arrow's own parse infers every column's type over the first
    block: seconds for 100,000 columns); the names are exactly Arrow's."""
    import pyarrow.csv as pacsv

    from exemplar.data.csv_input import plain_header

    (tmp_path / "t.csv").write_bytes(data)
    assert plain_header(tmp_path / "t.csv", 1 << 20) == pacsv.read_csv(tmp_path / "t.csv").schema.names


@pytest.mark.parametrize("data", NOT_PLAIN)
def test_csv_header_with_odd_quoting_is_left_to_arrow(tmp_path, data):
    from exemplar.data.csv_input import plain_header

    (tmp_path / "t.csv").write_bytes(data)
    assert plain_header(tmp_path / "t.csv", 1 << 20) is None


def test_wide_csv_lines_are_read_in_blocks_of_many_lines_and_typed_on_the_first_block(tmp_path, monkeypatch):
    """Lines longer than 1/16 of a block: the row passes read at least 16 lines a block (Arrow's cost
    per block grows with the columns), while the column types are still judged on the first block
    (64 KB here, about 8 lines: column f1 is numbers there and text in most rows after it)."""
    import exemplar.data.csv_input as csv_input

    rows, columns = 40, 1000
    values = np.random.default_rng(0).normal(size=(rows, columns)).round(3).astype(object)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(columns)])
    frame.insert(0, "label", np.arange(rows) % 2)
    frame.to_csv(tmp_path / "w.csv", index=False)
    in_first_block = (tmp_path / "w.csv").read_bytes()[: 1 << 16].count(b"\n") - 1  # data lines
    frame.loc[in_first_block - 1 :, "f1"] = "text"  # one text cell in the first block, text in every later row
    frame.to_csv(tmp_path / "w.csv", index=False)
    blocks = []
    real_open = csv_input.pacsv.open_csv
    monkeypatch.setattr(csv_input.pacsv, "open_csv", lambda *a, **k: (blocks.append(k["read_options"].block_size), real_open(*a, **k))[1])
    monkeypatch.setattr(csv_input, "CHUNK_CELLS", 1000)  # several column slices a batch
    dataset, quarantine, summary = ingest_in_memory(config("csv", tmp_path / "w.csv", batch_rows=1))  # 64 KB blocks
    line = len((tmp_path / "w.csv").read_text().splitlines()[1]) + 1
    assert 4 <= in_first_block <= 12 and blocks[0] == 1 << 16 and min(blocks[1:]) >= 16 * line  # types, then keys and data
    assert dataset.info.column_types == ["numeric"] * columns and len(quarantine) == 0
    assert summary["column_warnings"] == [{"column": "f1", "problem": "unparsed_cells",
                                           "detail": f"{rows - in_first_block + 1} cell(s) are not numbers (e.g. 'text') and are treated as missing"}]
    stored = dataset.table.sort_values("id")
    np.testing.assert_array_equal(stored[[f"f{i}" for i in range(2, columns)]].to_numpy(), values[:, 2:].astype(float))
