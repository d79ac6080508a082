"""Reviewer decisions: parsing the report's CSV, its spreadsheet, Label Studio exports; every bad
file is one ExemplarError naming the ids and the fix; relabels stream through with an honest hash."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from exemplar.data.canonical import dataset_hash
from exemplar.data.decisions import Relabeller, apply_removals, check_ids, check_labels, read_decisions
from exemplar.errors import ExemplarError

CLASSES = ["cat", "dog", "<b>bird</b>"]


def write(tmp_path, text: str, name: str = "decisions.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_report_export_parses(tmp_path):
    path = write(tmp_path, 'id,action,new_label,note\r\na-1,relabel,<b>bird</b>,"looks like a bird, really"\r\na-2,remove,,\r\na-3,keep,,\r\n')
    decisions = read_decisions(path)
    assert decisions.relabels == {"a-1": "<b>bird</b>"}
    assert decisions.removals == {"a-2"}
    assert decisions.counts() == {"relabel": 1, "remove": 1, "keep": 1}
    assert decisions.table.loc[0, "note"] == "looks like a bird, really"


def test_the_spreadsheet_export_skips_blank_actions_and_extra_columns(tmp_path):
    path = write(tmp_path, "rank,id,split,given_label,why,action,new_label,note\n1,a-1,train,cat,x,Relabel ,dog,\n2,a-2,train,cat,y,,,\n")
    assert read_decisions(path).relabels == {"a-1": "dog"}


@pytest.mark.parametrize("text, words", [
    ("id,verdict\na,remove\n", "no column(s) ['action']"),
    ("id,action\na,delete\n", "'delete'"),
    ("id,action,new_label\na,relabel,\n", "relabel without a new_label for id(s) 'a'"),
    ("id,action\na,remove\na,keep\n", "more than once"),
    ("id,action\n,remove\n", "no id"),
])
def test_malformed_files_name_the_problem_and_the_fix(tmp_path, text, words):
    with pytest.raises(ExemplarError, match="Fix:") as error:
        read_decisions(write(tmp_path, text))
    assert words in str(error.value)


def test_missing_file_and_non_export_json(tmp_path):
    with pytest.raises(ExemplarError, match="does not exist"):
        read_decisions(tmp_path / "nope.csv")
    with pytest.raises(ExemplarError, match="not a Label Studio export"):
        read_decisions(write(tmp_path, '{"a": 1}', "x.json"))


def test_label_studio_full_and_min_exports(tmp_path):
    full = [
        {"data": {"exemplar_id": "a-1", "given_label": "cat"}, "annotations": [{"result": [{"from_name": "label", "value": {"choices": ["dog"]}}]}]},
        {"data": {"exemplar_id": "a-2", "given_label": "cat"}, "annotations": [{"result": [{"from_name": "label", "value": {"choices": ["cat"]}}]}]},
        {"data": {"exemplar_id": "a-3", "given_label": "cat"}, "annotations": [{"result": [{"from_name": "action", "value": {"choices": ["remove"]}}]}]},
        {"data": {"exemplar_id": "a-4", "given_label": "cat"}, "annotations": [{"was_cancelled": True, "result": []}]},
        {"data": {"exemplar_id": "a-5", "given_label": "cat"}, "annotations": []},
    ]
    decisions = read_decisions(write(tmp_path, json.dumps(full), "export.json"))
    assert decisions.table[["id", "action", "new_label"]].values.tolist() == [["a-1", "relabel", "dog"], ["a-2", "keep", ""], ["a-3", "remove", ""]]
    minimal = [{"exemplar_id": "b-1", "given_label": "cat", "label": "dog"}, {"exemplar_id": "b-2", "given_label": "cat"}]
    assert read_decisions(write(tmp_path, json.dumps(minimal), "min.json")).relabels == {"b-1": "dog"}


def test_unknown_labels_and_ids_are_named(tmp_path):
    decisions = read_decisions(write(tmp_path, "id,action,new_label\na-1,relabel,horse\nq-1,remove,\nz-9,keep,\n"))
    with pytest.raises(ExemplarError, match="'a-1' -> 'horse'"):
        check_labels(decisions, CLASSES)
    with pytest.raises(ExemplarError, match=r"2 id\(s\).*'q-1', 'z-9'.*'q-1' \(missing_label\)"):
        check_ids(decisions, {"a-1"}, {"q-1": "missing_label"})


def canonical(ids: list[str], labels: list[int]) -> pa.Table:
    return pa.table({"id": ids, "label": pa.array(labels, pa.int64()), "label_name": [CLASSES[k] for k in labels],
                     "split": ["train"] * len(ids), "content_hash": [f"h{i}" for i in range(len(ids))]})


def test_relabeller_changes_labels_and_keeps_the_dataset_hash_honest(tmp_path):
    decisions = read_decisions(write(tmp_path, "id,action,new_label\na-1,relabel,<b>bird</b>\na-3,remove,\na-4,relabel,dog\n"))
    batches = [canonical(["a-0", "a-1"], [0, 0]), canonical(["a-3", "a-4"], [1, 1])]
    before = pd.concat([b.to_pandas() for b in batches])
    relabeller = Relabeller(decisions, CLASSES)
    after = pd.concat([relabeller(b).to_pandas() for b in batches])
    assert after["label"].tolist() == [0, 2, 1, 1] and after["label_name"].tolist() == ["cat", "<b>bird</b>", "dog", "dog"]
    summary = relabeller.summarize({"hash": dataset_hash(before), "rows_per_class": {"cat": 2, "dog": 2, "<b>bird</b>": 0}})
    assert summary["hash"] == dataset_hash(after) != dataset_hash(before)
    assert summary["rows_per_class"] == {"cat": 1, "dog": 2, "<b>bird</b>": 1}
    assert summary["decisions"]["relabelled"] == 1  # a-4 was already a dog
    record = relabeller.record()
    assert record.set_index("id")["changed"].to_dict() == {"a-1": True, "a-3": True, "a-4": False}
    assert record.set_index("id")["old_label"].to_dict() == {"a-1": "cat", "a-3": "dog", "a-4": "dog"}
    relabeller.check_ids(pd.DataFrame({"id": [], "reason": []}))


def test_removals_mask_rows_and_are_counted():
    mask = pd.DataFrame({"id": ["a", "b", "c"], "keep": [True, False, True], "drop_reason": ["", "exact_duplicate", ""]})
    record = pd.DataFrame({"id": ["b", "c"], "action": ["remove", "remove"]})
    summary = {"kept": 2, "dropped": 1, "dropped_by_reason": {"exact_duplicate": 1}}
    masked, facts = apply_removals(mask, summary, record)
    assert masked["keep"].tolist() == [True, False, False]
    assert masked["drop_reason"].tolist() == ["", "exact_duplicate", "reviewer_removed"]
    assert facts["reviewer_removed"] == 1 and facts["kept"] == 1 and facts["dropped"] == 2
    assert facts["dropped_by_reason"] == {"exact_duplicate": 1, "reviewer_removed": 1}
    assert np.array_equal(mask["keep"].to_numpy(), [True, False, True]), "the input mask is not modified"
