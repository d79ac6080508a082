"""Quiet, offline defaults for Prefect and MLflow, applied before either is imported.

Every value is a default: anything already set in the environment wins.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

DEFAULTS = {
    "PREFECT_HOME": str(PROJECT_ROOT / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    "HYDRA_FULL_ERROR": "0",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    # Idle OpenMP threads sleep instead of spinning (spinning made training several times slower on a
    # busy 2-core machine). Read when torch loads, so it must be set before torch is imported.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def apply_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
