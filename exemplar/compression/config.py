"""Compression settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from exemplar.compression.magnitude import validate_sparsity


@dataclass
class CompressConfig:
    sparsities: list[float] = field(default_factory=lambda: [0.5])
    batch_size: int = 512

    def validate(self) -> None:
        for sparsity in self.sparsities:
            validate_sparsity(sparsity)


def level_tag(sparsity: float) -> str:
    """Column suffix for a pruning level: 0.5 -> "p50", 0.925 -> "p92.5" -> "p92_5"."""
    percent = f"{sparsity * 100:g}".replace(".", "_")
    return f"p{percent}"
