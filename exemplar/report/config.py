"""Report settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from exemplar.scoring.fusion_config import DEFAULT, FusionConfig, fusion_config, recipe_settings, require_known_names
from exemplar.settings import require


def default_fusion() -> dict:
    """The shipped recipe as plain settings (lists, as Hydra gives them)."""
    return recipe_settings(DEFAULT)


@dataclass
class ReportConfig:
    top_k: int = 12  # examples shown at each end of every signal
    queue_size: int = 50  # rows of each review queue (training rows; test rows)
    thumbnail_pixels: int = 64  # thumbnail side: larger images reduced to it, tiny ones (under half) enlarged
    why_top_percent: float = 5.0  # a signal is named in the "why" column when the row is in its top this-many percent
    previous_scores: str | None = None  # an earlier run's scores.parquet, for rank changes
    fusion: dict = field(default_factory=default_fusion)  # the audit_score recipe (FusionConfig's fields); keys left out keep the shipped default

    def recipe(self) -> FusionConfig:
        """The fusion recipe these settings name (ExemplarError naming ``report.fusion.<key>`` when invalid)."""
        return fusion_config(self.fusion, where="report.fusion")

    def validate(self) -> None:
        """Raise ExemplarError naming the first bad setting and its fix."""
        require(1 <= self.top_k <= 1000, f"report.top_k must be in 1..1000 examples per signal, got {self.top_k}. Fix: e.g. report.top_k=12.")
        require(1 <= self.queue_size <= 100_000, f"report.queue_size must be in 1..100000 rows, got {self.queue_size}. Fix: e.g. report.queue_size=50.")
        require(8 <= self.thumbnail_pixels <= 1024, f"report.thumbnail_pixels must be in 8..1024, got {self.thumbnail_pixels}. Fix: e.g. report.thumbnail_pixels=64.")
        require(0 < self.why_top_percent <= 100, f"report.why_top_percent must be in (0, 100], got {self.why_top_percent}. Fix: e.g. report.why_top_percent=5.")
        require(isinstance(self.fusion, dict), f"report.fusion must be a group of settings, got {self.fusion!r}. "
                "Fix: set its keys, e.g. report.fusion.alpha=0.05 (conf/report/default.yaml lists them).")
        require_known_names(self.recipe(), where="report.fusion")
