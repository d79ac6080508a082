"""A real Prefect server on loopback for the tests that run the pipeline as separate processes (killed
and rerun): each process then skips the temporary server's start. Stopped by its process id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

FAULT_OVERRIDES = [
    "data.limit=200", "train=fast", "train.population=2", "compress.finetune_epochs=1", "compress.sparsities=[0.5]",
    "compress.quantization=[dynamic]", "report.queue_size=10", "report.top_k=4", "score.influence_top_k=2",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(api + "/health", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                os.killpg(server.pid, signal.SIGTERM)
                pytest.fail("the Prefect server did not start within 120 s")
            time.sleep(0.5)
    yield api
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture()
def pipeline_process(prefect_api, tmp_path, isolated_tracking):
    """start(out_dir, *overrides, fault=None) -> Popen of `python -m flows.pipeline` in its own process group."""

    def start(out_dir: Path, *overrides: str, fault: str | None = None) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PREFECT_API_URL": prefect_api, "OMP_NUM_THREADS": "1",
               "MLFLOW_TRACKING_URI": isolated_tracking, "PYTHONWARNINGS": "ignore"}
        env.pop("EXEMPLAR_FAULT", None)
        if fault:
            env["EXEMPLAR_FAULT"] = fault
        return subprocess.Popen(
            [sys.executable, "-m", "flows.pipeline", *FAULT_OVERRIDES, *overrides, f"out_dir={out_dir}"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )

    return start
