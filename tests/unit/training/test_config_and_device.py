"""Training settings: every conf/train option composes and trains one step; bad settings are named;
device resolution, mixed precision gating and DDP batch checks."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from exemplar.errors import ExemplarError
from exemplar.models.factory import ModelConfig, build_classifier
from exemplar.training.config import TrainConfig
from exemplar.training.device import resolve_device, to_cpu, uses_amp
from exemplar.training.distributed import Distributed, check_batches, world_from_environment
from exemplar.training.loop import fit
from flows.config import CONF_DIR, compose

TRAIN_OPTIONS = sorted(p.stem for p in (CONF_DIR / "train").glob("*.yaml"))


@pytest.mark.parametrize("option", TRAIN_OPTIONS)
def test_every_train_option_composes_validates_and_takes_one_step(option):
    section = OmegaConf.to_container(compose([f"train={option}"]))["train"]
    config = TrainConfig(**{**section, "epochs": 1, "checkpoint_epochs": [], "device": "cpu"})
    config.validate()
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 2
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(name="cnn", cnn_widths=[4, 4], cnn_hidden=8), "image", (1, 8, 8), 2, x.mean(), x.std())
    (result,) = fit(model, x, y, config)
    assert result.epoch == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"optimizer": "lamb"}, "train.optimizer"),
        ({"schedule": "linear"}, "train.schedule"),
        ({"device": "tpu"}, "train.device"),
        ({"label_smoothing": 1.0}, "train.label_smoothing"),
        ({"crop_padding": -1}, "train.crop_padding"),
        ({"checkpoint_epochs": [0]}, "train.checkpoint_epochs"),
        ({"checkpoint_every": 0}, "train.checkpoint_every"),
        ({"population": 0}, "train.population"),
        ({"momentum": 1.0}, "train.momentum"),
        ({"step_epochs": 0}, "train.step_epochs"),
    ],
)
def test_bad_settings_are_named(options, named):
    with pytest.raises(ExemplarError, match=named):
        TrainConfig(**options).validate()


def test_checkpoint_epochs_override_every_n_and_the_last_epoch_is_always_saved():
    every = TrainConfig(epochs=5, checkpoint_every=2)
    listed = TrainConfig(epochs=5, checkpoint_every=2, checkpoint_epochs=[1])
    assert [e for e in range(1, 6) if every.is_checkpoint_epoch(e)] == [2, 4, 5]
    assert [e for e in range(1, 6) if listed.is_checkpoint_epoch(e)] == [1, 5]


def test_device_resolution_and_amp_only_on_cuda():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not uses_amp(True, torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ExemplarError, match="train.device=cuda"):
            resolve_device("cuda")


def test_to_cpu_copies_nested_tensors_and_keeps_plain_values():
    moved = to_cpu({"a": [torch.ones(2), 3], "b": (torch.zeros(1),), "c": "x"})
    assert moved["a"][1] == 3 and moved["c"] == "x" and isinstance(moved["b"], tuple)
    assert moved["a"][0].device.type == "cpu"


def test_torchrun_environment_and_sharding():
    assert world_from_environment({}) == (0, 0, 1)
    assert world_from_environment({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}) == (3, 1, 4)
    batch = torch.arange(7)
    shards = [Distributed(rank, 3, torch.device("cpu")).shard(batch).tolist() for rank in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]


def test_every_rank_needs_a_row_of_every_batch():
    check_batches(rows=10, batch_size=4, world_size=2)  # batches of 4, 4, 2
    with pytest.raises(ExemplarError, match="last batch of 1"):
        check_batches(rows=9, batch_size=4, world_size=2)
    with pytest.raises(ExemplarError, match="train.batch_size"):
        check_batches(rows=8, batch_size=1, world_size=2)
