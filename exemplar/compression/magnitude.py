"""Global unstructured magnitude pruning with explicit masks (Han et al. 2015; the setting of
Hooker et al. 2019, arXiv 1911.05248).

All weight matrices and kernels of Linear and Conv layers compete in one pool: the `sparsity`
fraction with the smallest |w| across the whole network is set to zero. Biases and normalisation
buffers are left dense. Masks are plain boolean tensors (True = kept) owned by the caller, so the
same functions serve one-shot pruning and the gradual prune-while-fine-tuning loop.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from exemplar.errors import ExemplarError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight tensors of Linear and Conv layers, by qualified parameter name."""
    return {f"{name}.weight": module.weight for name, module in model.named_modules() if isinstance(module, PRUNABLE)}


def validate_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ExemplarError(f"sparsity must be in [0, 1), got {sparsity}. Fix: e.g. compress.sparsities=[0.3,0.5,0.9].")


@torch.no_grad()
def global_magnitude_masks(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Boolean keep-masks (same shapes as `weights`) zeroing the round(sparsity * total) smallest |w|.

    Ties are broken by position (stable sort), so exactly that many weights are pruned.
    """
    validate_sparsity(sparsity)
    flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    n_prune = int(round(sparsity * flat.numel()))
    keep = torch.ones_like(flat, dtype=torch.bool)
    if n_prune:
        keep[torch.argsort(flat, stable=True)[:n_prune]] = False
    masks, offset = {}, 0
    for name, weight in weights.items():
        masks[name] = keep[offset : offset + weight.numel()].view_as(weight).clone()
        offset += weight.numel()
    return masks


@torch.no_grad()
def apply_masks(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    """Zero, in place, every weight whose mask entry is False."""
    for name, weight in weights.items():
        weight.mul_(masks[name])


def achieved_sparsity(weights: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of exact zeros per layer and over all prunable weights (key ``"global"``)."""
    achieved = {name: float((w == 0).float().mean()) for name, w in weights.items()}
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    achieved["global"] = zeros / max(sum(w.numel() for w in weights.values()), 1)
    return achieved


def global_magnitude_prune(model: nn.Module, sparsity: float) -> tuple[nn.Module, dict[str, float]]:
    """Return a pruned deep copy of `model` and the achieved sparsity per layer (plus ``"global"``).

    The achieved global sparsity equals round(sparsity * total) / total (weights that were already
    exactly zero before pruning count as pruned only if the mask selects them).
    """
    pruned = copy.deepcopy(model)
    weights = prunable_weights(pruned)
    masks = global_magnitude_masks(weights, sparsity)
    apply_masks(weights, masks)
    return pruned, mask_sparsity(masks)


def mask_sparsity(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of pruned entries per mask and over all masks (key ``"global"``)."""
    sparsity = {name: 1.0 - float(mask.float().mean()) for name, mask in masks.items()}
    pruned = sum(int((~mask).sum()) for mask in masks.values())
    sparsity["global"] = pruned / max(sum(mask.numel() for mask in masks.values()), 1)
    return sparsity
