"""The training loop: one-batch smoke, determinism, in-process resume, checkpoint schedule and contents."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from exemplar.models.factory import ModelConfig, build_classifier
from exemplar.training.config import TrainConfig
from exemplar.training.loop import evaluate, fit
from tests.unit.training.resume_worker import tiny_images

SMALL_CNN = ModelConfig(name="cnn", cnn_widths=[4, 8], cnn_hidden=8, dropout=0.2)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_classifier(SMALL_CNN, "image", (1, 8, 8), 4, torch.tensor(0.5), torch.tensor(0.3))


def _train(config: TrainConfig, **kwargs) -> tuple[torch.nn.Module, list]:
    x, y = tiny_images(48)
    model = _model(config.seed)
    return model, fit(model, x, y, config, test_x=x[:16], test_y=y[:16], **kwargs)


def _frozen(state: dict) -> dict:
    """What a checkpoint file would hold (the live state keeps changing as training goes on)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_one_batch_smoke_returns_metrics_and_dynamics_for_every_row():
    config = TrainConfig(epochs=1, batch_size=64, device="cpu")
    model, (result,) = _train(config)
    assert result.epoch == 1 and result.lr == pytest.approx(0.05)
    assert result.correct.shape == (48,) and result.correct.dtype == bool
    assert result.label_probability.shape == (48,) and np.all((result.label_probability > 0) & (result.label_probability < 1))
    assert np.isfinite(result.train_loss) and 0.0 <= result.test_accuracy <= 1.0
    assert not model.training


def test_same_seed_gives_identical_metrics_and_weights():
    config = TrainConfig(epochs=2, batch_size=16, crop_padding=1, hflip=True, device="cpu")
    first, first_results = _train(config)
    second, second_results = _train(config)
    assert _same_weights(first, second)
    for a, b in zip(first_results, second_results, strict=True):
        assert (a.train_loss, a.test_loss, a.lr) == (b.train_loss, b.test_loss, b.lr)
        assert np.array_equal(a.label_probability, b.label_probability)


def test_another_seed_gives_other_weights():
    first, _ = _train(TrainConfig(epochs=1, batch_size=16, seed=0, device="cpu"))
    second, _ = _train(TrainConfig(epochs=1, batch_size=16, seed=1, device="cpu"))
    assert not _same_weights(first, second)


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "sgd", "schedule": "cosine", "crop_padding": 1, "hflip": True},
        {"optimizer": "adamw", "schedule": "onecycle", "lr": 0.01, "label_smoothing": 0.1},
        {"optimizer": "sgd", "schedule": "step", "step_epochs": 1, "step_gamma": 0.5},
    ],
)
def test_resuming_from_a_checkpoint_equals_the_uninterrupted_run(options):
    config = TrainConfig(epochs=3, batch_size=16, checkpoint_every=1, device="cpu", **options)
    saved = {}
    uninterrupted, _ = _train(config, save_checkpoint=lambda epoch, state: saved.setdefault(epoch, _frozen(state)))
    torch.manual_seed(123)  # disturb the global RNG: the checkpoint must restore it
    resumed, results = _train(config, resume=saved[1])
    assert [r.epoch for r in results] == [2, 3]
    assert _same_weights(uninterrupted, resumed)


def test_checkpoints_follow_the_schedule_and_hold_the_mean_lr():
    saved = {}
    config = TrainConfig(epochs=4, batch_size=16, schedule="step", step_epochs=1, step_gamma=0.5, checkpoint_epochs=[1, 3], device="cpu")
    _, results = _train(config, save_checkpoint=lambda epoch, state: saved.setdefault(epoch, _frozen(state)), meta={"k": 1})
    assert sorted(saved) == [1, 3, 4]
    assert saved[1]["lr"] == pytest.approx(0.05)
    assert saved[3]["lr"] == pytest.approx((0.025 + 0.0125) / 2)  # mean over epochs 2 and 3
    assert saved[4]["lr"] == pytest.approx(results[3].lr) and saved[4]["lr_last"] == pytest.approx(0.05 * 0.5**4)
    assert saved[4]["meta"] == {"k": 1}
    assert set(saved[4]) >= {"epoch", "lr", "lr_last", "model", "optimizer", "scheduler", "rng"}


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_the_reported_loss_is_the_label_smoothed_cross_entropy(smoothing):
    x, y = tiny_images(48)
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(name="mlp", mlp_hidden=[8], dropout=0.0), "image", (1, 8, 8), 4, x.mean(), x.std())
    with torch.no_grad():
        expected = float(F.cross_entropy(model(x), y, label_smoothing=smoothing))
    (result,) = fit(model, x, y, TrainConfig(epochs=1, batch_size=48, label_smoothing=smoothing, device="cpu"))
    assert result.train_loss == pytest.approx(expected, rel=1e-5)
    assert result.train_loss > evaluate(model, x, y)[0] or smoothing == 0.0  # smoothing adds a penalty


def test_tabular_inputs_are_not_augmented():
    x = torch.rand(32, 5)
    y = (x[:, 0] > 0.5).long()
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(name="mlp", mlp_hidden=[8]), "table", (5,), 2, x.mean(0), x.std(0))
    (result,) = fit(model, x, y, TrainConfig(epochs=1, batch_size=8, crop_padding=2, hflip=True, device="cpu"))
    assert result.correct.shape == (32,)
