"""Filtering and pruning settings (the ``prune`` config group)."""

from __future__ import annotations

from dataclasses import dataclass

from exemplar.errors import ExemplarError


@dataclass
class PruneConfig:
    drop_exact_duplicates: bool = True  # keep one row per content hash, mask the rest
    find_near_duplicates: bool = True  # report groups of near-identical rows (cosine similarity)
    near_duplicate_threshold: float = 0.98  # cosine similarity at or above which two rows are near duplicates
    drop_near_duplicates: bool = False  # also mask all but one row of each near-duplicate group
    near_duplicate_max_rows: int = 50000  # skip the search (and say so in the metrics) above this many rows
    groups_shown: int = 20  # how many groups/ids the metrics list by name

    def validate(self) -> None:
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ExemplarError(
                f"prune.near_duplicate_threshold must be in (0, 1], got {self.near_duplicate_threshold}. "
                "Fix: e.g. prune.near_duplicate_threshold=0.98 (1.0 finds only identical directions)."
            )
        if self.drop_near_duplicates and not self.find_near_duplicates:
            raise ExemplarError("prune.drop_near_duplicates=true needs prune.find_near_duplicates=true. Fix: set both, or neither.")
        if self.near_duplicate_max_rows < 2 or self.groups_shown < 0:
            raise ExemplarError("prune.near_duplicate_max_rows must be >= 2 and prune.groups_shown >= 0.")
