"""Prune while fine-tuning: a small training loop of its own that keeps boolean masks.

Each optimizer step: forward, cross-entropy, backward, step, then re-apply the masks so pruned
weights stay exactly zero. Before the steps the schedule marks (and once after the last step when
the schedule ends there) the masks are recomputed by global magnitude at the scheduled sparsity.
Since pruned weights are zero they are always among the smallest, so masks only ever grow.
Optimizer and learning-rate schedule come from :mod:`exemplar.training.schedules`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from exemplar.compression.magnitude import achieved_sparsity, apply_masks, global_magnitude_masks, prunable_weights
from exemplar.compression.schedule import PruneSchedule
from exemplar.training.config import TrainConfig
from exemplar.training.schedules import build_optimizer, build_scheduler, steps_per_epoch


@dataclass
class PruneResult:
    model: nn.Module  # pruned copy, eval mode
    sparsity: dict[str, float]  # achieved fraction of zeros per layer and "global"
    history: list[tuple[int, float]]  # (step, scheduled sparsity) at every mask update


def prune_finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, schedule: PruneSchedule, train: TrainConfig) -> PruneResult:
    """Prune a copy of `model` on the `schedule` while fine-tuning it for ``train.epochs`` epochs on
    (N, ...) inputs and (N,) int64 labels (batches of ``train.batch_size``, order drawn from
    ``train.seed``). With no training steps the copy is pruned once to the final sparsity."""
    pruned = copy.deepcopy(model)
    weights = prunable_weights(pruned)
    history: list[tuple[int, float]] = []
    total = train.epochs * steps_per_epoch(len(y), train.batch_size)
    if total == 0:
        _update(weights, PruneSchedule(final=schedule.final), 0, history)
        return PruneResult(pruned.eval(), achieved_sparsity(weights), history)
    masks = _update(weights, schedule, 0, history)
    _fit_masked(pruned, x, y, train, lambda step: _after_step(weights, masks, schedule, step + 1, total, history))
    if schedule.is_update_step(total):
        _update(weights, schedule, total, history)
    return PruneResult(pruned.eval(), achieved_sparsity(weights), history)


def _update(weights: dict[str, torch.Tensor], schedule: PruneSchedule, step: int, history: list) -> dict[str, torch.Tensor]:
    sparsity = schedule.sparsity_at(step)
    masks = global_magnitude_masks(weights, sparsity)
    apply_masks(weights, masks)
    history.append((step, sparsity))
    return masks


def _after_step(weights: dict, masks: dict, schedule: PruneSchedule, next_step: int, total: int, history: list) -> None:
    """Re-mask after an optimizer step; recompute the masks when `next_step` (still to run) is due."""
    apply_masks(weights, masks)
    if next_step < total and schedule.is_update_step(next_step):
        masks.update(_update(weights, schedule, next_step, history))


def _fit_masked(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train: TrainConfig, after_step) -> None:
    steps = steps_per_epoch(len(y), train.batch_size)
    optimizer = build_optimizer(model, train)
    scheduler = build_scheduler(optimizer, train, steps)
    generator = torch.Generator().manual_seed(train.seed)
    model.train()
    step = 0
    for _ in range(train.epochs):
        order = torch.randperm(len(y), generator=generator)
        for begin in range(0, len(y), train.batch_size):
            index = order[begin : begin + train.batch_size]
            loss = F.cross_entropy(model(x[index]), y[index], label_smoothing=train.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            after_step(step)
            step += 1
    model.eval()
