"""One Prefect server per ``dvc repro`` / ``dvc exp run``, shared by its stage processes.

Without ``PREFECT_API_URL`` every ``python -m flows.<stage>`` would start (and stop) Prefect's temporary
server: 4-25 s per stage on a busy 2-core machine. Under DVC, the first stage starts one server for the
whole repro instead, through a small supervisor process that stops it as soon as the ``dvc`` process
that ran the stages exits; the next stages find it in ``$PREFECT_HOME/repro-servers/<dvc pid>.json``.

    python -m flows.repro_server --watch PID --started T --state FILE   # the supervisor (started for you)

Nothing changes outside DVC or when ``PREFECT_API_URL`` is set (a server you run yourself wins);
``EXEMPLAR_SHARED_PREFECT=0`` turns it off (each stage then starts the temporary server, as before).
If the shared server cannot start, the stage falls back to the temporary server.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from flows.early_server import SERVER_ENVIRONMENT, free_port, server_command, stop

STARTUP_SECONDS = 120


_launched: set[int] = set()  # dvc pids whose supervisor this process started (and has not yet waited for)


def wanted(environ=None) -> bool:
    """Whether this process is a DVC stage that should use the repro's shared server."""
    environ = os.environ if environ is None else environ
    return not (environ.get("PREFECT_API_URL") or not environ.get("DVC_ROOT") or environ.get("EXEMPLAR_SHARED_PREFECT") == "0")


def start_early(environ=None) -> bool:
    """Called by ``flows.cli.preflight`` once the settings are valid: when this is the repro's first
    stage, start the shared server's supervisor now, so the server boots (on the other core) while the
    stage module imports torch, MLflow and Prefect; :func:`prefect_api_for_dvc` waits for it later."""
    if not wanted(environ):
        return False
    from tasks.ancestry import dvc_ancestor

    ancestor = dvc_ancestor()
    if ancestor is None:
        return False
    pid, started = ancestor
    path = state_path(pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():  # an earlier stage's server (checked, or replaced, by prefect_api_for_dvc)
            return False
        _start_supervisor(pid, started, path)
        _launched.add(pid)
    return True


@contextlib.contextmanager
def prefect_api_for_dvc(environ=None) -> Iterator[str | None]:
    """While the block runs, point Prefect at this repro's shared server (started if needed); yields its URL."""
    if not wanted(environ):
        yield None
        return
    from tasks.ancestry import dvc_ancestor

    ancestor = dvc_ancestor()
    url = shared_server(*ancestor) if ancestor else None
    if url is None:
        yield None
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


def state_path(pid: int) -> Path:
    return Path(os.environ["PREFECT_HOME"]) / "repro-servers" / f"{pid}.json"


def shared_server(pid: int, started: float) -> str | None:
    """The URL of the server for the dvc process `pid`: the running one, or a new one (None on failure)."""
    path = state_path(pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # stages run one at a time, but two repros may share PREFECT_HOME
        url = _running(path, started) if pid not in _launched else None
        if url is None:
            if pid not in _launched:
                _start_supervisor(pid, started, path)
            _launched.discard(pid)
            url = _wait_for(path, started)
    return url


def _running(path: Path, started: float) -> str | None:
    """The recorded server's URL if it belongs to this dvc process and answers its health check."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if abs(state.get("started", 0) - started) > 1e-3 or not healthy(state["url"]):
        return None
    return state["url"]


def healthy(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _start_supervisor(pid: int, started: float, path: Path) -> None:
    path.unlink(missing_ok=True)
    log = open(path.with_suffix(".log"), "w")
    command = [sys.executable, "-m", "flows.repro_server", "--watch", str(pid), "--started", repr(started), "--state", str(path)]
    subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                     cwd=Path(__file__).resolve().parents[1])
    log.close()


def _wait_for(path: Path, started: float) -> str | None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        url = _running(path, started) if path.exists() else None
        if url:
            return url
        time.sleep(0.2)
    return None


# --- the supervisor ---------------------------------------------------------------------------------


def start_server(port: int) -> subprocess.Popen:
    """Prefect's API (no UI, no background services) on 127.0.0.1:`port`, as its temporary server runs it,
    with this process's Prefect settings."""
    from prefect.settings import get_current_settings

    from flows.prefect_seed import seed_home

    env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True)}
    seed_home(env)  # a fresh Prefect home starts from the migrated database made at set-up
    return subprocess.Popen(server_command(port), env={**env, **SERVER_ENVIRONMENT}, stdin=subprocess.DEVNULL)


def is_alive(pid: int, started: float) -> bool:
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - started) < 1e-3
    except psutil.Error:
        return False


def start_stage_host(pid: int, started: float, path: Path) -> tuple[subprocess.Popen, Path] | None:
    """The repro's warm stage host (flows.warm_stages), listening in a private folder; None when turned off."""
    from flows import warm_stages

    if not warm_stages.enabled():
        return None
    try:
        folder = Path(tempfile.mkdtemp(prefix="exemplar-stages-"))
        command = [sys.executable, "-m", "flows.warm_stages", "--socket", str(folder / "host.sock"), "--watch", str(pid),
                   "--started", repr(started), "--log", str(path.parent / "stages.log")]
        return subprocess.Popen(command, stdin=subprocess.DEVNULL), folder
    except OSError as error:  # an optimisation only: the stages then run in their own processes
        warm_stages._log(path.parent / "stages.log", f"no stage host: {error}")
        return None


def supervise(pid: int, started: float, path: Path) -> int:
    """Run the server (and the stage host) while the dvc process lives; record them in `path`; stop them
    and clean up after."""
    port = free_port()
    server = start_server(port)
    host = None
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + STARTUP_SECONDS
        while not healthy(url) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if server.poll() is not None or not healthy(url):
            return 1
        _history(path, f"started {url} (pid {server.pid}) for dvc pid {pid}")
        host = start_stage_host(pid, started, path)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps({"url": url, "started": started, "server_pid": server.pid, "supervisor_pid": os.getpid(),
                                    "stage_host": str(host[1] / "host.sock") if host else None}))
        os.replace(temp, path)
        while server.poll() is None and is_alive(pid, started):
            time.sleep(0.5)
        return 0
    finally:
        stop(server, timeout=10)
        if host:
            stop(host[0], timeout=10)
            shutil.rmtree(host[1], ignore_errors=True)
        _history(path, f"stopped pid {server.pid} (dvc pid {pid} gone)")
        for leftover in (path, path.with_suffix(".lock"), path.with_suffix(".log")):
            leftover.unlink(missing_ok=True)


def _history(path: Path, line: str) -> None:
    """One line per server start and stop in repro-servers/history.log (what the tests read)."""
    with open(path.parent / "history.log", "a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def main(argv: list[str] | None = None) -> int:
    import flows  # noqa: F401  (quiet, offline Prefect defaults)

    parser = argparse.ArgumentParser(prog="python -m flows.repro_server", description=__doc__.splitlines()[0])
    parser.add_argument("--watch", type=int, required=True, help="pid of the dvc process")
    parser.add_argument("--started", type=float, required=True, help="its start time (psutil create_time)")
    parser.add_argument("--state", type=Path, required=True, help="where to record the server's URL")
    args = parser.parse_args(argv)
    return supervise(args.watch, args.started, args.state)


if __name__ == "__main__":
    sys.exit(main())
