"""The vectorised ensemble against training each model alone with ``fit``.

Tolerance: with dropout 0 every model of the ensemble ends within 1e-5 (absolute, every weight) of the
same model trained alone, with identical per-epoch predictions on the training rows; float
differences come only from the batched (vmapped) kernels summing in another order.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from exemplar.models.factory import ModelConfig, build_classifier
from exemplar.training.config import TrainConfig
from exemplar.training.ensemble import Member, fit_ensemble, step_groups, supports_ensemble
from exemplar.training.loop import fit
from tests.unit.training.resume_worker import tiny_images

NO_DROPOUT = ModelConfig(name="cnn", cnn_widths=[4, 8], cnn_hidden=8, dropout=0.0)
TOLERANCE = 1e-5


def _model(seed: int, config: ModelConfig = NO_DROPOUT) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_classifier(config, "image", (1, 8, 8), 4, torch.tensor(0.5), torch.tensor(0.3))


def _population() -> tuple[list[int], list[torch.Tensor]]:
    """Three models on different rows (50, 49 and 50 of 60: same 4 steps of 16, uneven last batch)."""
    rows = [torch.arange(0, 50), torch.arange(11, 60), torch.arange(60)[torch.arange(60) % 6 != 0]]
    return [3, 4, 5], rows


def _alone(config: TrainConfig, seed: int, rows: torch.Tensor, x, y) -> tuple[torch.nn.Module, list]:
    model = _model(seed)
    results = fit(model, x[rows], y[rows], TrainConfig(**{**config.__dict__, "seed": seed}), test_x=x[:16], test_y=y[:16])
    return model, results


def _max_difference(state: dict, model: torch.nn.Module) -> float:
    return max(float((state[k] - v).abs().max()) for k, v in model.state_dict().items())


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_each_model_matches_training_it_alone(optimizer):
    x, y = tiny_images(60)
    seeds, rows = _population()
    config = TrainConfig(epochs=3, batch_size=16, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.01, crop_padding=1, hflip=True, device="cpu")
    stacked, results = fit_ensemble([_model(s) for s in seeds], [Member(s, r) for s, r in zip(seeds, rows)], x, y, config, test_x=x[:16], test_y=y[:16])
    for m, (seed, member_rows) in enumerate(zip(seeds, rows)):
        model, alone = _alone(config, seed, member_rows, x, y)
        assert _max_difference(stacked.state_dict(m), model) < TOLERANCE
        for ours, theirs in zip(results[m], alone, strict=True):
            assert np.array_equal(ours.correct, theirs.correct)
            assert ours.label_probability == pytest.approx(theirs.label_probability, abs=TOLERANCE)
            assert ours.train_loss == pytest.approx(theirs.train_loss, abs=TOLERANCE)
            assert (ours.test_accuracy, ours.lr) == (theirs.test_accuracy, theirs.lr)


def _frozen(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_member_checkpoints_resume_a_lone_fit_and_the_ensemble():
    x, y = tiny_images(60)
    seeds, rows = _population()
    config = TrainConfig(epochs=4, batch_size=16, checkpoint_every=2, device="cpu")
    members = [Member(s, r) for s, r in zip(seeds, rows)]
    saved: dict[tuple[int, int], dict] = {}
    full, _ = fit_ensemble([_model(s) for s in seeds], members, x, y, config,
                           save_checkpoint=lambda m, epoch, state: saved.__setitem__((m, epoch), _frozen(state)))
    assert sorted(saved) == [(m, e) for m in range(3) for e in (2, 4)]
    # the ensemble resumed from epoch 2 ends where the uninterrupted one did
    resumed, results = fit_ensemble([_model(s) for s in seeds], members, x, y, config, resume=[saved[(m, 2)] for m in range(3)])
    assert [r.epoch for r in results[0]] == [3, 4]
    for m in range(3):
        assert all(torch.allclose(resumed.state_dict(m)[k], v, atol=1e-6) for k, v in full.state_dict(m).items())
    # a member's checkpoint is an ordinary one: a lone fit resumes it and ends near the ensemble's model
    model = _model(seeds[1])
    fit(model, x[rows[1]], y[rows[1]], TrainConfig(**{**config.__dict__, "seed": seeds[1]}), resume=saved[(1, 2)])
    assert _max_difference(full.state_dict(1), model) < TOLERANCE


def test_dropout_masks_differ_between_models_of_the_ensemble():
    x, y = tiny_images(32)
    config = TrainConfig(epochs=1, batch_size=32, device="cpu")
    with_dropout = ModelConfig(name="cnn", cnn_widths=[4, 8], cnn_hidden=8, dropout=0.5)
    rows = torch.arange(32)
    stacked, results = fit_ensemble([_model(0, with_dropout), _model(0, with_dropout)], [Member(0, rows), Member(0, rows)], x, y, config)
    assert not np.array_equal(results[0][0].label_probability, results[1][0].label_probability)


def test_step_groups_and_batch_norm_support():
    members = [Member(0, torch.arange(64)), Member(1, torch.arange(60)), Member(2, torch.arange(65))]
    assert step_groups(members, 32) == [[0, 1], [2]]
    assert supports_ensemble(_model(0))
    resnet = build_classifier(ModelConfig(name="resnet18", resnet_width=4), "image", (1, 8, 8), 4, torch.tensor(0.5), torch.tensor(0.3))
    assert not supports_ensemble(resnet)
    with pytest.raises(ValueError, match="same steps per epoch"):
        fit_ensemble([_model(0), _model(2)], [members[0], members[2]], torch.rand(65, 1, 8, 8), torch.zeros(65, dtype=torch.long), TrainConfig(epochs=1, batch_size=32, device="cpu"))
