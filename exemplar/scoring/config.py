"""Scoring settings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ScoreConfig:
    signals: list[str] = field(default_factory=lambda: ["loss", "margin", "el2n", "confidently_wrong"])
    batch_size: int = 512
    el2n_epoch: int = 2  # EL2N uses the first checkpoint at or after this epoch ("early in training")


def early_checkpoint_index(epochs: list[int], target: int) -> int:
    """Index of the first checkpoint epoch >= `target` (the last one if none is)."""
    for index, epoch in enumerate(epochs):
        if epoch >= target:
            return index
    return len(epochs) - 1
