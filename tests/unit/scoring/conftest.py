"""Tiny seeded models and data shared by the scoring tests."""

from __future__ import annotations

import pytest
import torch

from exemplar.models.factory import ModelConfig, build_classifier

TINY = ModelConfig(name="auto", cnn_widths=[4, 8], cnn_hidden=16, mlp_hidden=[16, 12], dropout=0.1)


def tiny_classifier(modality: str = "image", seed: int = 0, classes: int = 3) -> torch.nn.Module:
    """A small CNN (image, inputs (1, 8, 8)) or MLP (table, 5 features) in eval mode."""
    torch.manual_seed(seed)
    shape = (1, 8, 8) if modality == "image" else (5,)
    mean = torch.full((1, 1, 1), 0.3) if modality == "image" else torch.linspace(-1, 1, 5)
    std = torch.full((1, 1, 1), 0.2) if modality == "image" else torch.linspace(0.5, 2, 5)
    return build_classifier(TINY, modality, shape, classes, mean, std).eval()


def tiny_inputs(modality: str = "image", n: int = 12, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, 1, 8, 8) if modality == "image" else (n, 5)
    return torch.rand(shape, generator=generator), torch.randint(0, classes, (n,), generator=generator)


@pytest.fixture
def image_model() -> torch.nn.Module:
    return tiny_classifier("image")


@pytest.fixture
def image_data() -> tuple[torch.Tensor, torch.Tensor]:
    return tiny_inputs("image")


class SharedLayer(torch.nn.Module):
    """One Linear called twice per forward: per-example outer-product gradient forms do not apply."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.layer(torch.tanh(self.layer(x)))
