"""The bad-input table: each case ends in quarantine with the right reason, or in an ExemplarError
naming the file and the fix; never a traceback, never a lost row (rows_read = rows + quarantined)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from exemplar.data.loaders import ingest_in_memory
from exemplar.errors import ExemplarError
from tests.unit.data.makers import config, png_bytes, tiny_images, tiny_table, write_cifar, write_image_folder


def _folder(tmp_path, channels=1):
    return write_image_folder(tmp_path / "images", tiny_images(channels=channels))


def corrupt_png(tmp_path):
    root = _folder(tmp_path)
    (root / "train/cat/bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return config("image_folder", root), "undecodable_image", ["train/cat/bad.png"]


def truncated_jpeg(tmp_path):
    root = _folder(tmp_path)
    data = png_bytes(np.full((3, 16, 16), 90, np.uint8), "JPEG")
    (root / "train/dog/cut.jpg").write_bytes(data[: len(data) // 2])
    return config("image_folder", root), "undecodable_image", ["train/dog/cut.jpg"]


def empty_image_file(tmp_path):
    root = _folder(tmp_path)
    (root / "train/cat/empty.png").write_bytes(b"")
    return config("image_folder", root), "zero_size_image", ["train/cat/empty.png"]


def image_outside_class_folder(tmp_path):
    root = _folder(tmp_path)
    (root / "train/loose.png").write_bytes(png_bytes(np.zeros((1, 6, 5), np.uint8)))
    return config("image_folder", root), "missing_label", ["train/loose.png"]


def null_image_bytes(tmp_path):
    data = tiny_images()
    frame = pd.DataFrame({"id": data["ids"], "label": data["labels"], "image": [png_bytes(p) for p in data["pixels"]]})
    frame.loc[2, "image"] = None
    frame.to_parquet(tmp_path / "i.parquet")
    return config("parquet", tmp_path / "i.parquet"), "undecodable_image", [data["ids"][2]]


def nan_label(tmp_path):
    frame = tiny_table()
    frame["label"] = frame["label"].astype(float)
    frame.loc[4, "label"] = np.nan
    frame.to_parquet(tmp_path / "t.parquet")
    return config("parquet", tmp_path / "t.parquet"), "missing_label", ["r004"]


def csv_with_text(tmp_path, column: str, row: int, text: str):
    """A CSV of the tiny table with `text` in one numeric cell, and its data config."""
    frame = tiny_table(rows=15).astype({column: object})
    frame.loc[row, column] = text
    frame.to_csv(tmp_path / "t.csv", index=False)
    return config("csv", tmp_path / "t.csv")


def string_label_in_numeric_column(tmp_path):
    return csv_with_text(tmp_path, "label", 7, "seven"), "invalid_label", ["r007"]


def duplicate_ids(tmp_path):
    frame = tiny_table(rows=15)
    frame.loc[9, "id"] = "r002"
    frame.to_parquet(tmp_path / "t.parquet")
    return config("parquet", tmp_path / "t.parquet"), "duplicate_id", ["r002"]


def wrong_feature_count(tmp_path):
    path = tmp_path / "t.csv"
    tiny_table(rows=15).to_csv(path, index=False)
    path.write_text(path.read_text() + "r900,1,0.5\n")
    return config("csv", path), "wrong_feature_count", ["invalid-line-0000000"]


def missing_image_path(tmp_path):
    data = tiny_images()
    write_image_folder(tmp_path, data)
    rows = pd.DataFrame({"image": data["ids"] + ["nowhere.png"], "label": list(data["labels"]) + ["cat"], "split": list(data["splits"]) + ["train"]})
    rows.to_csv(tmp_path / "t.csv", index=False)
    return config("csv", tmp_path / "t.csv"), "missing_image_file", ["row-0000008"]


def invalid_split(tmp_path):
    frame = tiny_table(rows=15)
    frame["split"] = ["train"] * 10 + ["test"] * 4 + ["tset"]  # a typo; "validation" is read as test
    frame.to_parquet(tmp_path / "t.parquet")
    return config("parquet", tmp_path / "t.parquet"), "invalid_split", ["r014"]


QUARANTINED = [
    corrupt_png, truncated_jpeg, empty_image_file, image_outside_class_folder, null_image_bytes, nan_label, string_label_in_numeric_column,
    duplicate_ids, wrong_feature_count, missing_image_path, invalid_split,
]


@pytest.mark.parametrize("make", QUARANTINED, ids=lambda f: f.__name__)
def test_bad_rows_are_quarantined_with_their_reason(tmp_path, make):
    data_config, reason, ids = make(tmp_path)
    dataset, quarantine, summary = ingest_in_memory(data_config)
    assert quarantine["reason"].tolist() == [reason] * len(ids)
    assert quarantine["id"].tolist() == ids
    assert (quarantine["detail"] != "").all()
    assert summary["quarantined_by_reason"][reason] == len(ids)
    assert summary["rows_read"] == summary["rows"] + summary["quarantined"] == len(dataset.table) + len(quarantine)
    if reason == "duplicate_id":
        assert (dataset.table["id"] == ids[0]).sum() == 1  # the first row with the id is kept
    else:
        assert not dataset.table["id"].isin(ids).any()


def test_quarantine_keeps_the_original_image_bytes(tmp_path):
    data_config, _, _ = corrupt_png(tmp_path)
    quarantine = ingest_in_memory(data_config)[1]
    assert quarantine["image"].iat[0] == (tmp_path / "images/train/cat/bad.png").read_bytes()
    assert quarantine["original"].iat[0] == "train/cat/bad.png"


def test_quarantine_keeps_the_original_csv_text(tmp_path):
    data_config, _, _ = wrong_feature_count(tmp_path)
    assert ingest_in_memory(data_config)[1]["original"].iat[0] == "r900,1,0.5"


def test_missing_and_infinite_features_are_kept_not_quarantined(tmp_path):
    frame = tiny_table(rows=15)
    frame.loc[3, "f1"], frame.loc[5, "f0"] = np.inf, np.nan
    np.savez(tmp_path / "t.npz", x=frame[["f0", "f1", "f2"]].to_numpy(), y=frame["label"].to_numpy(), ids=frame["id"].to_numpy(dtype=str),
             feature_names=np.array(["f0", "f1", "f2"]))
    dataset, quarantine, summary = ingest_in_memory(config("npz", tmp_path / "t.npz"))
    assert len(quarantine) == 0 and len(dataset.table) == 15
    row = dataset.table.set_index("id")
    assert np.isinf(row.loc["r003", "f1"]) and np.isnan(row.loc["r005", "f0"])  # the original values, as given
    assert summary["missing_values"] == {"f0": 1, "f1": 1} and summary["rows_with_missing_values"] == 2


def test_text_in_a_numeric_csv_cell_is_missing_and_counted(tmp_path):
    dataset, quarantine, summary = ingest_in_memory(csv_with_text(tmp_path, "f2", 6, "n/a?"))
    assert len(quarantine) == 0 and np.isnan(dataset.table.set_index("id").loc["r006", "f2"])
    assert summary["feature_types"]["f2"] == "numeric"
    assert [(w["column"], w["problem"]) for w in summary["column_warnings"]] == [("f2", "unparsed_cells")]
    assert "'n/a?'" in summary["column_warnings"][0]["detail"]


def test_mixed_sizes_are_resized_to_the_most_common(tmp_path):
    root = _folder(tmp_path)
    (root / "train/cat/big.png").write_bytes(png_bytes(np.zeros((1, 12, 10), np.uint8)))
    dataset, quarantine, summary = ingest_in_memory(config("image_folder", root))
    assert dataset.info.image_shape == [1, 6, 5] and summary["images_resized"] == 1 and len(quarantine) == 0


def test_configured_size_wins(tmp_path):
    dataset, _, summary = ingest_in_memory(config("image_folder", _folder(tmp_path), image_size=[4, 4]))
    assert dataset.info.image_shape == [1, 4, 4] and summary["images_resized"] == summary["rows"]


def test_gray_and_rgb_mix_becomes_rgb(tmp_path):
    root = _folder(tmp_path)
    (root / "train/dog/colour.png").write_bytes(png_bytes(np.full((3, 6, 5), 200, np.uint8)))
    dataset, _, summary = ingest_in_memory(config("image_folder", root))
    assert dataset.info.image_shape == [3, 6, 5] and summary["images_recoloured"] == len(dataset.table) - 1
    forced = ingest_in_memory(config("image_folder", root, channels=1))[0]
    assert forced.info.image_shape == [1, 6, 5]


def _error(data_config) -> str:
    with pytest.raises(ExemplarError) as caught:
        ingest_in_memory(data_config)
    return str(caught.value)


def test_csv_read_with_the_wrong_separator_or_encoding_names_the_setting(tmp_path):
    frame = tiny_table(rows=9).assign(city=["Köln", "Zürich", "Malmö"] * 3)
    frame.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    frame.to_csv(tmp_path / "tabs.csv", index=False, sep="\t")
    frame.to_csv(tmp_path / "latin.csv", index=False, encoding="latin-1")
    assert "semicolon-separated: set data.delimiter=';'" in _error(config("csv", tmp_path / "semi.csv"))
    assert "tab-separated: set data.delimiter=tab" in _error(config("csv", tmp_path / "tabs.csv"))
    message = _error(config("csv", tmp_path / "latin.csv"))
    assert "latin.csv" in message and "data.text_encoding" in message


@pytest.mark.parametrize("key, value, expected", [("delimiter", ";;", "data.delimiter"), ("delimiter", '"', "data.delimiter"),
                                                  ("text_encoding", "utf-9", "data.text_encoding")])
def test_bad_csv_settings_are_named_before_reading(key, value, expected):
    with pytest.raises(ExemplarError, match=expected):
        config("csv", "/nonexistent.csv", **{key: value}).validate()


def test_feature_columns_named_like_the_datasets_own_are_named_with_the_fix(tmp_path):
    frame = tiny_table(rows=9).assign(label_name="x", content_hash=1.0)
    frame.to_parquet(tmp_path / "t.parquet")
    message = _error(config("parquet", tmp_path / "t.parquet"))
    assert "'label_name', 'content_hash'" in message and "hand the model the answer" in message and "data.feature_columns" in message
    other = tiny_table(rows=9).rename(columns={"label": "target"}).assign(label=1.0)  # the label column renamed, a feature called label
    other.to_csv(tmp_path / "t.csv", index=False)
    message = _error(config("csv", tmp_path / "t.csv", label_column="target"))
    assert "feature column(s) 'label' have the names of exemplar's own columns" in message and "Fix:" in message


def test_folder_without_images(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("no images here")
    message = _error(config("image_folder", tmp_path))
    assert str(tmp_path) in message and "no image files" in message and "Fix:" in message


def test_single_class(tmp_path):
    frame = tiny_table()
    frame["label"] = "only"
    frame.to_parquet(tmp_path / "t.parquet")
    message = _error(config("parquet", tmp_path / "t.parquet"))
    assert "t.parquet" in message and "'only'" in message and "at least 2" in message and "Fix:" in message


def test_class_left_without_training_rows_by_quarantine(tmp_path):
    frame = tiny_table(rows=9)
    frame["split"] = "train"
    frame.loc[frame["label"] == 2, "split"] = "unused"  # every row of class 2 is unusable
    frame.loc[0, ["label", "split"]] = [2, "test"]  # ... except this test row (no training row left)
    frame.to_parquet(tmp_path / "t.parquet")
    message = _error(config("parquet", tmp_path / "t.parquet"))
    assert "'2' (0)" in message and "invalid_split: 3" in message and "have no training rows" in message


@pytest.mark.parametrize(
    "frame, expected",
    [
        (pd.DataFrame({"target": [0, 1], "f0": [0.1, 0.2]}), "has no 'label' column (columns: target, f0)"),
        (pd.DataFrame({"label": [0, 1], "tags": [[1, 2], [3]]}), "feature column(s) tags are neither numbers, text, booleans nor dates"),
        (pd.DataFrame({"label": [0, 1], "image": ["x.png", "y.png"]}), "not image bytes"),
    ],
    ids=["no_label", "list_feature", "image_not_bytes"],
)
def test_parquet_with_wrong_schema(tmp_path, frame, expected):
    frame.to_parquet(tmp_path / "wrong.parquet")
    message = _error(config("parquet", tmp_path / "wrong.parquet"))
    assert "wrong.parquet" in message and expected in message and "Fix:" in message


def test_parquet_folder_with_mismatched_files(tmp_path):
    tiny_table().to_parquet(tmp_path / "a.parquet")
    tiny_table().drop(columns="f2").to_parquet(tmp_path / "b.parquet")
    message = _error(config("parquet", tmp_path))
    assert "b.parquet has a different schema" in message and "Fix:" in message


@pytest.mark.parametrize("kind, name", [("parquet", "e.parquet"), ("csv", "e.csv")])
def test_empty_table_file(tmp_path, kind, name):
    (tmp_path / name).write_bytes(b"")
    message = _error(config(kind, tmp_path / name))
    assert name in message and "empty file" in message


def test_npz_with_object_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.array([0, 1]))
    message = _error(config("npz", tmp_path / "o.npz"))
    assert "o.npz" in message and "without unpickling" in message


def test_cifar_refuses_code_in_pickles(tmp_path):
    root = write_cifar(tmp_path / "cifar")

    class Exploit:
        def __reduce__(self):
            return (print, ("owned",))

    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    message = _error(config("cifar", root))
    assert "data_batch_1" in message and "refusing to load" in message and "print" in message


def test_one_row_class_goes_to_training_and_is_named(tmp_path, caplog):
    frame = tiny_table(rows=13)
    frame.loc[6, "label"] = 9  # a mistyped label: the only row of its class
    frame.to_parquet(tmp_path / "t.parquet")
    dataset, quarantine, summary = ingest_in_memory(config("parquet", tmp_path / "t.parquet"))
    row = dataset.table.set_index("id").loc["r006"]
    assert row["split"] == "train" and row["label_name"] == "9" and len(quarantine) == 0
    assert summary["train_only_classes"] == ["9"] and summary["rows_per_class"]["9"] == 1
    assert "'9'" in caplog.text and "single row" in caplog.text


def test_singletons_leave_the_other_classes_split_as_before(tmp_path):
    clean = tiny_table(rows=30)
    clean.to_parquet(tmp_path / "clean.parquet")
    with_one = pd.concat([clean, clean.iloc[[0]].assign(id="odd", label=7)], ignore_index=True)
    with_one.to_parquet(tmp_path / "one.parquet")
    before = ingest_in_memory(config("parquet", tmp_path / "clean.parquet"))[0].table.set_index("id")["split"]
    after = ingest_in_memory(config("parquet", tmp_path / "one.parquet"))[0].table.set_index("id")["split"]
    assert after.drop("odd").equals(before) and after["odd"] == "train"


def test_a_measured_value_as_the_label_is_an_error_not_a_run_of_singletons(tmp_path):
    """Most rows alone in their class mean the label column holds measurements (a price), not classes."""
    frame = tiny_table(rows=30)
    frame["label"] = np.round(np.linspace(1.0, 20.0, 30), 2)
    frame.loc[:9, "label"] = 1.0  # one class of ten rows, twenty of one row each
    frame.to_parquet(tmp_path / "t.parquet")
    message = _error(config("parquet", tmp_path / "t.parquet"))
    assert "20 of the 30 usable rows are the only row of their class" in message and "class label" in message and "Fix:" in message


def test_a_few_mistyped_labels_in_a_binary_table_are_kept(tmp_path):
    """Three typos next to two real classes: more classes are singletons than not, yet they are 3 rows of 40."""
    frame = tiny_table(rows=40)
    frame["label"] = np.arange(40) % 2
    frame["label"] = frame["label"].map({0: "yes", 1: "no"})
    frame.loc[[3, 8, 13], "label"] = ["yse", "noo", "Yes"]
    frame.to_parquet(tmp_path / "t.parquet")
    _, quarantine, summary = ingest_in_memory(config("parquet", tmp_path / "t.parquet"))
    assert sorted(summary["train_only_classes"]) == ["Yes", "noo", "yse"] and len(quarantine) == 0


def test_nothing_usable(tmp_path):
    frame = tiny_table(rows=6)
    frame["label"] = np.nan
    frame.to_parquet(tmp_path / "t.parquet")
    message = _error(config("parquet", tmp_path / "t.parquet"))
    assert "none of the 6 rows is usable (missing_label: 6)" in message
