"""Report settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReportConfig:
    top_k: int = 12  # examples shown per signal
    queue_size: int = 50  # rows of the review queue shown in the report
    thumbnail_pixels: int = 64  # thumbnails are enlarged (nearest neighbour) to at least this size
