"""Small seeded models and data for the compression tests."""

from __future__ import annotations

import torch

from exemplar.models.classifier import Classifier
from exemplar.models.cnn import SmallCNN


def tiny_cnn(seed: int = 0) -> torch.nn.Module:
    """A seeded CNN classifier for (B, 1, 8, 8) inputs and 4 classes (eval mode)."""
    torch.manual_seed(seed)
    return Classifier(SmallCNN(1, 4, (4, 8), 16, 0.0), torch.full((1, 1, 1), 0.5), torch.full((1, 1, 1), 0.25)).eval()


def blob_data(rows: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, 1, 8, 8) images in [0, 1] whose class (of 4) sets which quadrant is bright."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(rows) % 4
    x = 0.2 * torch.rand(rows, 1, 8, 8, generator=generator)
    for label in range(4):
        top, left = divmod(label, 2)
        x[y == label, :, 4 * top : 4 * top + 4, 4 * left : 4 * left + 4] += 0.7
    return x.clamp(0, 1), y
