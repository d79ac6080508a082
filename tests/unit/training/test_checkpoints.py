"""Checkpoint files are complete or absent; temp files are never listed or loaded."""

from __future__ import annotations

import pickle

import pytest
import torch

from exemplar.training.checkpoints import checkpoint_path, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint


class _Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("cannot save this")


def test_save_then_load_round_trips_tensors_and_plain_values(tmp_path):
    state = {"epoch": 3, "lr": 0.1, "model": {"w": torch.arange(4.0)}, "meta": {"name": "cnn", "shape": [1, 8, 8]}}
    save_checkpoint(state, checkpoint_path(tmp_path, 3))
    loaded = load_checkpoint(tmp_path / "epoch_0003.pt")
    assert loaded["epoch"] == 3 and loaded["meta"] == state["meta"] and torch.equal(loaded["model"]["w"], torch.arange(4.0))


def test_a_failed_save_leaves_neither_the_checkpoint_nor_a_temp_file(tmp_path):
    save_checkpoint({"epoch": 1}, checkpoint_path(tmp_path, 1))
    with pytest.raises(pickle.PicklingError):
        save_checkpoint({"epoch": 2, "bad": _Unpicklable()}, checkpoint_path(tmp_path, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0001.pt"]
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch_0001.pt"


def test_half_written_temp_files_are_ignored_and_epochs_sort_numerically(tmp_path):
    for epoch in (2, 10, 1):
        save_checkpoint({"epoch": epoch}, checkpoint_path(tmp_path, epoch))
    (tmp_path / "epoch_0011.pt.tmp").write_bytes(b"\x80\x02truncated")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch_0001.pt", "epoch_0002.pt", "epoch_0010.pt"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["epoch"] == 10


def test_a_missing_folder_has_no_checkpoints(tmp_path):
    assert list_checkpoints(tmp_path / "absent") == [] and latest_checkpoint(tmp_path / "absent") is None


def test_loading_refuses_arbitrary_pickled_objects(tmp_path):
    path = tmp_path / "epoch_0001.pt"
    torch.save({"epoch": 1, "payload": _Harmless()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)


class _Harmless:
    pass
