from __future__ import annotations

import pytest

from exemplar.compression.finetune import prune_finetune, steps_per_epoch
from exemplar.compression.magnitude import prunable_weights
from exemplar.compression.schedule import PruneSchedule, cubic_sparsity, gradual_schedule
from exemplar.training.config import TrainConfig
from tests.unit.compression.makers import blob_data, tiny_cnn


def zhu_gupta(t: int, t_end: int, s_i: float, s_f: float) -> float:
    """s_t = s_f + (s_i - s_f)(1 - t / t_end)^3, held at s_f after t_end (arXiv 1710.01878, eq. 1)."""
    return s_f + (s_i - s_f) * (1 - min(t, t_end) / t_end) ** 3


@pytest.mark.parametrize("s_i, s_f", [(0.0, 0.9), (0.2, 0.5), (0.5, 0.5)])
def test_cubic_schedule_matches_the_formula_at_every_step(s_i, s_f):
    schedule = gradual_schedule(s_f, s_i, total_steps=40, every=1, end_fraction=0.75)
    assert schedule.end_step == 30
    for t in range(41):
        assert schedule.sparsity_at(t) == pytest.approx(zhu_gupta(t, 30, s_i, s_f))


def test_hand_values_of_the_cubic():
    assert cubic_sparsity(0.0, 0.0, 0.8) == 0.0
    assert cubic_sparsity(0.5, 0.0, 0.8) == pytest.approx(0.8 - 0.8 / 8)
    assert cubic_sparsity(1.0, 0.0, 0.8) == pytest.approx(0.8)
    assert cubic_sparsity(2.0, 0.0, 0.8) == pytest.approx(0.8)


def test_update_steps_and_one_shot():
    schedule = PruneSchedule(final=0.5, end_step=10, every=4)
    assert [t for t in range(15) if schedule.is_update_step(t)] == [0, 4, 8, 10]
    one_shot = PruneSchedule(final=0.5)
    assert [t for t in range(5) if one_shot.is_update_step(t)] == [0]
    assert one_shot.sparsity_at(0) == 0.5


def finetune_config(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=16, lr=0.01, schedule="constant", seed=0)


def test_gradual_pruning_follows_the_schedule_and_reaches_the_target_exactly():
    x, y = blob_data(64)
    train = finetune_config(2)
    total = 2 * steps_per_epoch(64, 16)
    schedule = gradual_schedule(0.7, 0.0, total, every=2, end_fraction=1.0)
    result = prune_finetune(tiny_cnn(), x, y, schedule, train)
    steps = [step for step, _ in result.history]
    assert steps == [0, 2, 4, 6, 8]
    for step, sparsity in result.history:
        assert sparsity == pytest.approx(zhu_gupta(step, total, 0.0, 0.7))
    weights = prunable_weights(result.model)
    total_weights = sum(w.numel() for w in weights.values())
    assert sum(int((w == 0).sum()) for w in weights.values()) == round(0.7 * total_weights)
    assert result.sparsity["global"] == pytest.approx(0.7, abs=1 / total_weights)


def test_one_shot_with_fine_tuning_keeps_pruned_weights_at_zero_and_learns():
    x, y = blob_data(64)
    model = tiny_cnn()
    result = prune_finetune(model, x, y, PruneSchedule(final=0.5), finetune_config(3))
    assert result.history == [(0, 0.5)]
    assert result.sparsity["global"] == pytest.approx(0.5, abs=1e-3)
    changed = [not (a == b).all() for a, b in zip(prunable_weights(result.model).values(), prunable_weights(model).values())]
    assert any(changed)


def test_without_training_steps_the_copy_is_pruned_to_the_final_sparsity():
    x, y = blob_data(32)
    result = prune_finetune(tiny_cnn(), x, y, gradual_schedule(0.6, 0.0, 10, 1, 1.0), finetune_config(0))
    assert result.sparsity["global"] == pytest.approx(0.6, abs=1e-3)
