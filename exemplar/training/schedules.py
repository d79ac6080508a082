"""Learning-rate schedules as multiplicative factors of the base lr, stepped once per batch."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from exemplar.training.config import TrainConfig


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over `rows` rows (the last batch may be short)."""
    return -(-rows // batch_size)


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Return f(step) -> factor for step = 0, 1, ... over epochs * steps_per_epoch steps."""
    total = max(config.epochs * steps_per_epoch, 1)
    if config.schedule == "constant":
        return lambda step: 1.0
    if config.schedule == "step":
        return lambda step: config.step_gamma ** ((step // steps_per_epoch) // config.step_epochs)
    if config.schedule == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return _one_cycle(total)


def _one_cycle(total: int, warmup_fraction: float = 0.3, start: float = 0.04, end: float = 1e-4) -> Callable[[int], float]:
    """Linear warm-up from `start` to 1 over the first 30% of steps, then cosine down to `end`."""
    warmup = max(int(total * warmup_fraction), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return start + (1.0 - start) * step / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps_per_epoch))
