"""A backbone wrapped with input normalisation, so models take raw [0, 1] inputs.

Keeping the normalisation inside the model means input gradients (VoG) are taken with respect to
the data as stored, and a checkpoint alone is enough to score new data.
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """``forward(x) = head(embed(x))`` with ``embed(x) = backbone.embed((x - mean) / std)``.

    `mean` and `std` broadcast against one input (e.g. (C, 1, 1) for images, (F,) for tables).
    """

    def __init__(self, backbone: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", mean.clone().float())
        self.register_buffer("std", std.clone().float())

    @property
    def head(self) -> nn.Linear:
        return self.backbone.head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.embed((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def input_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (images (N, C, H, W) -> (C, 1, 1)) or per-feature ((N, F) -> (F,)) mean and std.

    Computed on the training split only; a zero std is replaced by 1 so constant inputs stay finite.
    """
    dims = (0, 2, 3) if x.dim() == 4 else (0,)
    mean = x.mean(dim=dims)
    std = x.std(dim=dims)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    if x.dim() == 4:
        return mean[:, None, None], std[:, None, None]
    return mean, std
