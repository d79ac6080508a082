"""Filtering and pruning settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PruneConfig:
    drop_exact_duplicates: bool = True  # keep one row per content hash, mask the rest
