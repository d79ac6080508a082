"""Shared Prefect task options: results are files written by the tasks themselves, so Prefect's own
result persistence and input caching are off (re-runs are made cheap by DVC and by resuming from
checkpoints instead)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE


def stage_task(name: str, **options):
    """Decorator for a stage task: named, no Prefect caching or result persistence; a pipeline stage
    (ingest, filter, train, score, compress, report) also follows the run directory's rules
    (:func:`tasks.layout.managed`: manifest checks, staging and commit, resume)."""
    from tasks.layout import managed

    def decorate(fn):
        return task(name=name, cache_policy=NO_CACHE, persist_result=False, **options)(managed(name, fn))

    return decorate
