"""Shared Prefect task options: results are files written by the tasks themselves, so Prefect's own
result persistence and input caching are off (re-runs are made cheap by DVC and by resuming from
checkpoints instead)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE


def stage_task(name: str, **options):
    """Decorator for a stage task: named, no Prefect caching or result persistence."""
    return task(name=name, cache_policy=NO_CACHE, persist_result=False, **options)
