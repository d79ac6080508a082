"""A multilayer perceptron for tabular features."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Linear-ReLU-Dropout blocks -> linear head. Input (B, F); ``embed`` (B, hidden[-1]); logits (B, K)."""

    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...] = (256, 128), dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
