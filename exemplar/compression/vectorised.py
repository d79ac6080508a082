"""Prune-while-fine-tuning a whole population at every level at once, as one vectorised ensemble.

Member (m, l) is dense model m fine-tuned on its own rows with level l's schedule; level sparsity 0
is the *dense reference*: the same fine-tuning (epochs, learning rate and schedule, batch order drawn
from model m's seed) with nothing pruned, so a dense-vs-compressed difference measures compression
alone. Every member follows :func:`exemplar.compression.finetune.prune_finetune` step for step: masks
by global magnitude at ``schedule.sparsity_at(step)`` before step 0 and before every update step,
re-applied after every optimizer step (tested against the one-model loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from exemplar.compression.magnitude import PRUNABLE
from exemplar.compression.schedule import PruneSchedule
from exemplar.training.config import TrainConfig
from exemplar.training.ensemble import Member, Stacked, fit_ensemble
from exemplar.training.schedules import steps_per_epoch


def prunable_names(model: nn.Module) -> list[str]:
    """Qualified names of the Linear/Conv weight tensors (the global pruning pool)."""
    return [f"{name}.weight" for name, module in model.named_modules() if isinstance(module, PRUNABLE)]


@torch.no_grad()
def stacked_magnitude_masks(weights: dict[str, torch.Tensor], sparsities: list[float]) -> dict[str, torch.Tensor]:
    """Per member m of (M, ...) stacked weights: keep-masks zeroing its round(sparsities[m] * P)
    smallest |w| over all its weights (ties by position, stable sort), as
    :func:`exemplar.compression.magnitude.global_magnitude_masks` does for one model."""
    flat = torch.cat([w.detach().abs().flatten(1) for w in weights.values()], dim=1)  # (M, P)
    total = flat.shape[1]
    n_prune = torch.tensor([int(round(s * total)) for s in sparsities], device=flat.device)
    order = torch.argsort(flat, dim=1, stable=True)
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep.scatter_(1, order, torch.arange(total, device=flat.device)[None, :] >= n_prune[:, None])
    masks, offset = {}, 0
    for name, weight in weights.items():
        size = weight[0].numel()
        masks[name] = keep[:, offset : offset + size].view_as(weight).clone()
        offset += size
    return masks


class PopulationMasks:
    """Masks of every member, updated on each member's schedule and re-applied after every step."""

    def __init__(self, stacked: Stacked, names: list[str], schedules: list[PruneSchedule], total_steps: int):
        self.weights = {name: stacked.params[name] for name in names}
        self.schedules, self.total = schedules, total_steps
        self.masks = {name: torch.ones_like(w, dtype=torch.bool) for name, w in self.weights.items()}
        self.updates = [0] * len(schedules)

    @torch.no_grad()
    def update(self, step: int, due: list[int]) -> None:
        """Re-apply the masks; then recompute those of members `due` at their scheduled sparsity for
        `step` (from the re-masked weights, as the one-model loop does) and apply them."""
        self._apply()
        if due:
            fresh = stacked_magnitude_masks({k: w[due] for k, w in self.weights.items()}, [self.schedules[m].sparsity_at(step) for m in due])
            for name in self.masks:
                self.masks[name][due] = fresh[name]
            for m in due:
                self.updates[m] += 1
            self._apply()

    @torch.no_grad()
    def _apply(self) -> None:
        for name, weight in self.weights.items():
            weight.mul_(self.masks[name])

    def due(self, step: int) -> list[int]:
        return [m for m, schedule in enumerate(self.schedules) if schedule.is_update_step(step)]

    def after_step(self, step: int, _stacked: Stacked) -> None:
        """After optimizer step `step`: re-mask; recompute the masks due before step + 1."""
        following = step + 1
        self.update(following, self.due(following) if following < self.total else [])


@dataclass
class PopulationFinetune:
    stacked: Stacked  # (M * L) fine-tuned members, member index = m * L + l
    achieved: list[dict[str, float]]  # per member: fraction of zeros per prunable weight and "global"
    mask_updates: list[int]


def finetune_population(models: list[nn.Module], rows: list[torch.Tensor], seeds: list[int], x: torch.Tensor, y: torch.Tensor,
                        schedules: list[PruneSchedule], finetune: TrainConfig) -> PopulationFinetune:
    """Fine-tune every model m on its (n_m,) `rows` of the (N, ...) inputs under every level's
    `schedules[l]`, all in one ensemble (no augmentation, no checkpoints, as in prune_finetune)."""
    levels = len(schedules)
    members = [Member(seeds[m], rows[m]) for m in range(len(models)) for _ in range(levels)]
    copies = [models[m] for m in range(len(models)) for _ in range(levels)]
    config = TrainConfig(**{**finetune.__dict__, "crop_padding": 0, "hflip": False, "checkpoint_epochs": [], "checkpoint_every": 10**9})
    total = finetune.epochs * steps_per_epoch(len(rows[0]), finetune.batch_size)
    if total == 0:
        raise ValueError("fine-tuning needs at least one step: compress.finetune_epochs >= 1")
    names = prunable_names(models[0])
    holder: dict[str, PopulationMasks] = {}

    def start(stacked: Stacked) -> None:  # before step 0: every member's first mask
        holder["masks"] = PopulationMasks(stacked, names, [schedules[i % levels] for i in range(len(members))], total)
        holder["masks"].update(0, list(range(len(members))))

    def after_step(step: int, stacked: Stacked) -> None:
        holder["masks"].after_step(step, stacked)

    stacked, _ = fit_ensemble(copies, members, x, y, config, on_start=start, after_step=after_step)
    masks = holder["masks"]
    final = masks.due(total)  # a schedule that ends exactly at the last step updates once more
    masks.update(total, final)
    return PopulationFinetune(stacked, [_achieved(masks.weights, i) for i in range(len(members))], masks.updates)


def _achieved(weights: dict[str, torch.Tensor], m: int) -> dict[str, float]:
    achieved = {name: float((w[m] == 0).float().mean()) for name, w in weights.items()}
    zeros = sum(int((w[m] == 0).sum()) for w in weights.values())
    achieved["global"] = zeros / max(sum(w[m].numel() for w in weights.values()), 1)
    return achieved
