"""One-shot global unstructured magnitude pruning (Han et al. 2015; Hooker et al. 2019 setting).

All weight matrices and kernels of Linear and Conv layers compete in one pool: the `sparsity`
fraction with the smallest |w| across the whole network is set to zero. Biases and normalisation
buffers are left dense.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from exemplar.errors import ExemplarError


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight tensors of Linear and Conv layers, by qualified parameter name."""
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    }


def validate_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ExemplarError(f"sparsity must be in [0, 1), got {sparsity}. Fix: e.g. compress.sparsities=[0.3,0.5,0.9].")


@torch.no_grad()
def global_magnitude_prune(model: nn.Module, sparsity: float) -> tuple[nn.Module, dict[str, float]]:
    """Return a pruned deep copy of `model` and the achieved sparsity per layer (plus ``"global"``).

    Exactly round(sparsity * total) weights are zeroed (ties broken by position), so the achieved
    global sparsity equals the request up to one weight.
    """
    validate_sparsity(sparsity)
    pruned = copy.deepcopy(model)
    weights = prunable_weights(pruned)
    flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    n_prune = int(round(sparsity * flat.numel()))
    keep = torch.ones_like(flat, dtype=torch.bool)
    if n_prune:
        keep[torch.argsort(flat, stable=True)[:n_prune]] = False
    offset, achieved = 0, {}
    for name, weight in weights.items():
        mask = keep[offset : offset + weight.numel()].view_as(weight)
        weight.mul_(mask)
        achieved[name] = 1.0 - float(mask.float().mean())
        offset += weight.numel()
    achieved["global"] = n_prune / flat.numel()
    return pruned, achieved
