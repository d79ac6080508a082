"""A small CNN that adapts to the input's channels and size (8x8 digits up to 32x32 RGB)."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """conv-conv-pool-conv-adaptive-pool -> hidden (the embedding) -> linear head.

    Input (B, C, H, W); ``embed`` returns (B, hidden); ``forward`` returns logits (B, K).
    The head is a separate ``nn.Linear`` so last-layer scores can use (embedding, head).
    """

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, int] = (32, 64), hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        c1, c2 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(),  # (B, c1, H, W)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c2, H/2, W/2)
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),  # (B, c2, 2, 2)
            nn.Flatten(),
        )
        self.neck = nn.Sequential(nn.Linear(c2 * 4, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
