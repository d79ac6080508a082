"""Prefect's temporary API server for one command, started while the command is still importing.

Without ``PREFECT_API_URL``, Prefect starts its temporary server at the first flow call and waits for it
(about 4 s on a quiet 2-core machine), after this process has already spent about as long importing
torch, MLflow, scikit-learn and the stage modules. :func:`start` (called by ``flows.cli.preflight`` once
the settings are valid, before those imports) launches the very command Prefect's
``SubprocessASGIServer`` runs, so the server boots on the other core meanwhile; :func:`adopt` (called by
``flows.cli.main`` just before the flow) waits for it to answer and hands it to Prefect as its temporary
server, which Prefect then uses and stops at exit exactly as if it had started it itself.

Nothing is started for ``--help``, ``--cfg job`` or a settings error, under DVC's shared server
(``flows.repro_server``), under torchrun, when ``PREFECT_API_URL`` is set, or with
``EXEMPLAR_EARLY_PREFECT=0``. If Prefect turns out to be configured otherwise (an API URL in the Prefect
profile) or the early server does not come up, it is stopped and Prefect does what it always does. A
server started but never adopted (an error before the flow starts) is stopped when the process exits.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

_started: dict[str, object] = {}  # "process" -> Popen, "port" -> int, while not yet adopted


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this command should start its Prefect server early."""
    environ = os.environ if environ is None else environ
    if environ.get("EXEMPLAR_EARLY_PREFECT") == "0" or environ.get("PREFECT_API_URL"):
        return False
    if environ.get("DVC_ROOT") and environ.get("EXEMPLAR_SHARED_PREFECT") != "0":
        return False  # flows.repro_server: one server for the whole repro
    if int(environ.get("WORLD_SIZE", "1") or 1) > 1 or int(environ.get("RANK", "0") or 0) != 0:
        return False  # torchrun: DDP training runs without Prefect
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVER_ENVIRONMENT = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}  # as Prefect runs its temporary server


def server_command(port: int) -> list[str]:
    """``SubprocessASGIServer._run_uvicorn_command`` of prefect 3.8, found without importing prefect."""
    site = Path(importlib.util.find_spec("prefect").origin).parents[1]
    return [sys.executable, "-m", "uvicorn", "--app-dir", str(site), "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]


def start(environ: Mapping[str, str] | None = None) -> bool:
    """Launch the server in the background (no waiting); True if one was started."""
    if _started or not wanted(environ):
        return False
    from flows.prefect_seed import seed_home

    seed_home()  # a fresh Prefect home starts from the migrated database made at set-up
    port = free_port()
    try:
        process = subprocess.Popen(server_command(port), env={**os.environ, **SERVER_ENVIRONMENT}, stdin=subprocess.DEVNULL)
    except OSError:
        return False
    _started.update(process=process, port=port)
    atexit.register(stop_unadopted)
    return True


def stop(process: subprocess.Popen, timeout: float = 5) -> None:
    """Terminate `process` and reap it (as Prefect stops its temporary server); kill it after `timeout` s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_unadopted() -> None:
    """At exit (or when Prefect will not use it): stop a server that was never handed to Prefect."""
    process = _started.pop("process", None)
    _started.clear()
    if process is not None:
        stop(process)


def adopt(meanwhile: Callable[[], object] | None = None) -> str | None:
    """Wait for the early server and make it Prefect's temporary server; its API URL, or None when
    there is none (nothing started, Prefect configured with an API URL, or it failed to come up).
    `meanwhile` runs once if the server is not up yet (work the run needs later, done while waiting)."""
    if "process" not in _started:
        return None
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    process, port = _started["process"], int(_started["port"])
    if PREFECT_API_URL.value():  # set in the Prefect profile: Prefect will not start a server
        stop_unadopted()
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running or not _healthy(process, port, float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()), meanwhile):
        stop_unadopted()
        return None
    server.port, server.server_process, server.running = port, process, True
    atexit.register(server.stop)  # as SubprocessASGIServer.start does; runs before stop_unadopted (LIFO)
    _started.clear()
    return server.api_url


def _healthy(process: subprocess.Popen, port: int, timeout: float, meanwhile: Callable[[], object] | None = None) -> bool:
    """Poll the server's health endpoint until it answers 200, the process exits, or `timeout` passes
    (running `meanwhile` once after the first unanswered poll)."""
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if meanwhile is not None:
                meanwhile, work = None, meanwhile
                work()
                continue
            time.sleep(0.05)
    return False
