"""Shared fixtures: every test session tracks to a throw-away MLflow store and, when a test asks for
it, runs Prefect against one session-wide test server (set-up costs about 7 s, so it is shared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import flows  # noqa: F401  (applies the quiet, offline environment defaults before prefect loads)

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Small enough for seconds, big enough that every class has train and test rows.
TINY_OVERRIDES = ["data.limit=300", "train=fast", "train.population=2", "train.crossfit_repeats=2", "report.queue_size=10", "report.top_k=4"]


@pytest.fixture(scope="session", autouse=True)
def isolated_tracking(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Point MLflow at a per-session SQLite file so tests never touch the user's mlflow.db."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect test server (temporary database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_cfg() -> dict:
    """The composed default configuration shrunk for tests (plain dict, validated)."""
    from flows.cli import load_config

    return load_config(TINY_OVERRIDES)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test runs torch on one thread: bit-exact comparisons need a fixed thread count, and on a
    shared 2-core machine two spinning OpenMP threads make tiny models many times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
