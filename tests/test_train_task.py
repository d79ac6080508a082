"""The train task on a tiny run folder: checkpoints and dynamics on disk, resuming after lost
epochs ends with the same weights, a changed setting never resumes stale checkpoints, and the
progress bar appears only on an interactive terminal."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import torch

from exemplar.data.canonical import to_arrow
from exemplar.data.digits import load_digits_dataset
from exemplar.errors import ExemplarError
from exemplar.training.checkpoints import list_checkpoints, load_checkpoint
from exemplar.training.config import TrainConfig
from tasks._io import read_json, write_parquet
from tasks.layout import RunLayout
from tasks.run import standalone_tracking
from tasks.train import is_interactive, population_seeds, progress_callbacks, train


@pytest.fixture(scope="module")
def torch_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run_dir(path, cfg: dict) -> RunLayout:
    layout = RunLayout(path)
    dataset = load_digits_dataset(limit=int(cfg["data"]["limit"]))
    write_parquet(to_arrow(dataset), layout.dataset)
    write_parquet(pd.DataFrame({"id": dataset.table["id"], "keep": True}), layout.keep)
    return layout


def _small(tiny_cfg: dict, **train) -> dict:
    return {**tiny_cfg, "train": {**tiny_cfg["train"], "batch_size": 32, "checkpoint_every": 1, **train}}


def test_training_writes_checkpoints_and_dynamics_and_resumes_to_the_same_weights(tmp_path, tiny_cfg, torch_one_thread):
    cfg = _small(tiny_cfg)
    layout = _run_dir(tmp_path, cfg)
    summary = train.fn(cfg, str(tmp_path), standalone_tracking(cfg))
    epochs = cfg["train"]["epochs"]
    paths = list_checkpoints(layout.checkpoints(0))
    assert [load_checkpoint(p)["epoch"] for p in paths] == list(range(1, epochs + 1))
    assert summary["epochs_run"] == epochs and summary["resumed_from_epoch"] == 0 and summary["device"] == "cpu"
    dynamics = pd.read_parquet(layout.dynamics(0) / f"epoch_{epochs:04d}.parquet")
    assert list(dynamics.columns) == ["id", "epoch", "correct", "label_probability"]
    assert len(dynamics) == summary["train_rows"] and dynamics["id"].is_unique
    assert read_json(layout.stage_metrics("train_seed0"))["final_test_accuracy"] == summary["final_test_accuracy"]

    final = load_checkpoint(paths[-1])["model"]
    paths[-1].unlink()  # as if killed before the last epoch was saved
    again = train.fn(cfg, str(tmp_path), standalone_tracking(cfg))
    assert again["resumed_from_epoch"] == epochs - 1 and again["epochs_run"] == 1
    resumed = load_checkpoint(list_checkpoints(layout.checkpoints(0))[-1])["model"]
    assert all(torch.equal(final[name], resumed[name]) for name in final)


def test_a_checkpoint_whose_dynamics_were_lost_is_redone_to_the_same_bytes(tmp_path, tiny_cfg, torch_one_thread):
    """Killed between a checkpoint and that epoch's dynamics: the rerun must redo that epoch, not skip it."""
    cfg = _small(tiny_cfg)
    layout = _run_dir(tmp_path, cfg)
    train.fn(cfg, str(tmp_path), standalone_tracking(cfg))
    epochs = cfg["train"]["epochs"]
    lost = layout.dynamics_file(0, epochs - 1)
    expected = pd.read_parquet(lost)
    lost.unlink()
    assert layout.resume_checkpoint(0).name == f"epoch_{epochs - 2:04d}.pt"
    with pytest.raises(ExemplarError, match=rf"epoch\(s\) \[{epochs - 1}\]"):
        layout.complete_dynamics(0, epochs)
    again = train.fn(cfg, str(tmp_path), standalone_tracking(cfg))
    assert again["resumed_from_epoch"] == epochs - 2 and again["epochs_run"] == 2
    pd.testing.assert_frame_equal(pd.read_parquet(lost), expected)
    assert len(layout.complete_dynamics(0, epochs)) == epochs


def test_changed_settings_never_resume_stale_checkpoints(tmp_path, tiny_cfg, torch_one_thread):
    cfg = _small(tiny_cfg, epochs=1)
    _run_dir(tmp_path, cfg)
    train.fn(cfg, str(tmp_path), standalone_tracking(cfg))
    with pytest.raises(ExemplarError, match="different configuration"):
        train.fn(_small(tiny_cfg, epochs=1, lr=0.01), str(tmp_path), standalone_tracking(cfg))


def test_population_seeds_count_up_from_the_seed(tiny_cfg):
    assert population_seeds(_small(tiny_cfg, seed=4, population=3)) == [4, 5, 6]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_only_on_a_terminal_outside_ci():
    assert is_interactive(_Terminal(), {})
    assert not is_interactive(_Terminal(), {"CI": "true"})
    assert not is_interactive(io.StringIO(), {})


def test_progress_callbacks_are_absent_when_not_interactive_and_drive_a_bar_otherwise():
    config = TrainConfig(epochs=2, batch_size=10)
    with progress_callbacks(config, rows=20, enabled=False) as callbacks:
        assert callbacks == (None, None)
    with progress_callbacks(config, rows=20, enabled=True) as (on_batch, on_epoch):
        on_batch(1, 2)
        on_batch(2, 1)
        with progress_callbacks(config, rows=20, enabled=True) as nested:
            assert nested == (None, None)  # one live display at a time
