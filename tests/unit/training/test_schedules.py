"""Learning-rate schedules against hand-derived values, and the optimisers they drive."""

from __future__ import annotations

import math

import pytest
import torch

from exemplar.training.config import TrainConfig
from exemplar.training.schedules import build_optimizer, build_scheduler, lr_factor


def _factors(steps: int = 4, **options) -> list[float]:
    factor = lr_factor(TrainConfig(epochs=5, **options), steps_per_epoch=steps)
    return [factor(step) for step in range(5 * steps + 1)]


def test_constant_is_one_everywhere():
    assert set(_factors(schedule="constant")) == {1.0}


def test_step_multiplies_by_gamma_every_step_epochs():
    factors = _factors(schedule="step", step_epochs=2, step_gamma=0.1)
    assert factors[0:8] == [1.0] * 8  # epochs 1-2
    assert factors[8:16] == pytest.approx([0.1] * 8)  # epochs 3-4
    assert factors[16] == pytest.approx(0.01)


def test_cosine_falls_from_one_through_a_half_to_zero():
    factors = _factors(schedule="cosine")  # 20 steps in all
    assert factors[0] == 1.0 and factors[10] == pytest.approx(0.5) and factors[20] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_onecycle_warms_up_for_30_percent_then_anneals():
    factors = _factors(schedule="onecycle")  # warm-up: int(20 * 0.3) = 6 steps
    assert factors[0] == pytest.approx(0.04)
    assert factors[3] == pytest.approx(0.04 + 0.96 * 3 / 6)
    assert factors[6] == pytest.approx(1.0)
    assert factors[20] == pytest.approx(1e-4)
    assert max(factors) == factors[6]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_optimisers_carry_the_configured_hyperparameters(optimizer):
    model = torch.nn.Linear(3, 2)
    built = build_optimizer(model, TrainConfig(optimizer=optimizer, lr=0.2, momentum=0.8, weight_decay=0.01))
    group = built.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.2, 0.01)
    assert isinstance(built, torch.optim.SGD if optimizer == "sgd" else torch.optim.AdamW)
    if optimizer == "sgd":
        assert group["momentum"] == 0.8


def test_the_scheduler_sets_the_optimiser_lr_per_step():
    model = torch.nn.Linear(3, 2)
    config = TrainConfig(epochs=1, lr=0.4, schedule="cosine")
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=2)
    seen = []
    for _ in range(2):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.4, 0.4 * 0.5 * (1 + math.cos(math.pi / 2))])
