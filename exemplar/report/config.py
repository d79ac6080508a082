"""Report settings."""

from __future__ import annotations

from dataclasses import dataclass

from exemplar.errors import ExemplarError


@dataclass
class ReportConfig:
    top_k: int = 12  # examples shown at each end of every signal
    queue_size: int = 50  # rows of each review queue (training rows; test rows)
    thumbnail_pixels: int = 64  # thumbnail side: larger images reduced to it, tiny ones (under half) enlarged
    why_top_percent: float = 5.0  # a signal is named in the "why" column when the row is in its top this-many percent
    previous_scores: str | None = None  # an earlier run's scores.parquet, for rank changes

    def validate(self) -> None:
        for name in ("top_k", "queue_size", "thumbnail_pixels"):
            if getattr(self, name) < 1:
                raise ExemplarError(f"report.{name} must be at least 1, got {getattr(self, name)}. Fix: e.g. report.{name}=10.")
        if not 0 < self.why_top_percent <= 100:
            raise ExemplarError(f"report.why_top_percent must be in (0, 100], got {self.why_top_percent}. Fix: e.g. report.why_top_percent=5.")
