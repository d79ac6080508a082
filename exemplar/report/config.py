"""Report settings."""

from __future__ import annotations

from dataclasses import dataclass

from exemplar.settings import require


@dataclass
class ReportConfig:
    top_k: int = 12  # examples shown per signal
    queue_size: int = 50  # rows of the review queue shown in the report
    thumbnail_pixels: int = 64  # thumbnails are enlarged (nearest neighbour) to at least this size

    def validate(self) -> None:
        """Raise ExemplarError naming the first bad setting and its fix."""
        require(1 <= self.top_k <= 1000, f"report.top_k must be in 1..1000 examples per signal, got {self.top_k}. Fix: e.g. report.top_k=12.")
        require(1 <= self.queue_size <= 100_000, f"report.queue_size must be in 1..100000 rows, got {self.queue_size}. Fix: e.g. report.queue_size=50.")
        require(8 <= self.thumbnail_pixels <= 1024, f"report.thumbnail_pixels must be in 8..1024, got {self.thumbnail_pixels}. Fix: e.g. report.thumbnail_pixels=64.")
