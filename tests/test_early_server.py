"""The Prefect server a command starts while it imports (flows/early_server.py): Prefect adopts it as its
temporary server, and nothing is left running after the process exits, adopted or not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from flows import early_server
from tests.conftest import PROJECT_ROOT

ADOPTED = """
import flows
from flows import early_server
from prefect import flow
from prefect.server.api.server import SubprocessASGIServer

assert early_server.start()
pid = early_server._started["process"].pid
url = early_server.adopt(meanwhile=lambda: None)
assert url == SubprocessASGIServer().api_url, (url, SubprocessASGIServer().api_url)

@flow
def add(a: int, b: int) -> int:
    return a + b

assert add(1, 2) == 3
assert SubprocessASGIServer().server_process.pid == pid  # Prefect used ours, started no other
print(pid)
"""

UNADOPTED = """
import flows
from flows import early_server

assert early_server.start()
print(early_server._started["process"].pid)
"""


def run_script(source: str, tmp_path) -> int:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONWARNINGS": "ignore"}
    for key in ("PREFECT_API_URL", "DVC_ROOT", "EXEMPLAR_EARLY_PREFECT", "WORLD_SIZE", "RANK"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_prefect_runs_its_flows_on_the_early_server_and_stops_it_at_exit(tmp_path):
    assert gone(run_script(ADOPTED, tmp_path))


def test_a_server_never_adopted_is_stopped_at_exit(tmp_path):
    assert gone(run_script(UNADOPTED, tmp_path))


def test_started_only_where_prefect_would_start_its_temporary_server():
    assert early_server.wanted({})
    assert not early_server.wanted({"PREFECT_API_URL": "http://127.0.0.1:4200/api"})
    assert not early_server.wanted({"DVC_ROOT": "/repo"})  # the repro's shared server (flows/repro_server.py)
    assert early_server.wanted({"DVC_ROOT": "/repo", "EXEMPLAR_SHARED_PREFECT": "0"})
    assert not early_server.wanted({"WORLD_SIZE": "2", "RANK": "1"})  # torchrun: no Prefect
    assert not early_server.wanted({"EXEMPLAR_EARLY_PREFECT": "0"})


def test_nothing_to_adopt_without_a_start():
    assert early_server.adopt() is None
