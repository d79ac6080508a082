"""Prefect flows: one per stage, plus ``flows.pipeline`` for the whole DAG."""

from flows._env import apply_defaults

apply_defaults()
