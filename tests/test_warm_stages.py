"""The warm stage host (flows/warm_stages.py): a stage command hands its stage to the host, which runs it
in a forked copy with the command's arguments, folder, environment and streams, and reports its exit
status; anything that could make the copy differ from a fresh process makes the command run the stage
itself. The whole path under `dvc repro` (same outputs as without the host) is in tests/test_dvc.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture
def environment(tmp_path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONWARNINGS": "ignore"}
    env.pop("EXEMPLAR_WARM_STAGES", None)
    return env


def start_host(tmp_path: Path, env: dict, watch: int | None = None, preload: tuple[str, ...] = ("json",)) -> tuple[subprocess.Popen, Path, tuple[int, float]]:
    watched = psutil.Process(watch or os.getpid())
    dvc = (watched.pid, watched.create_time())
    path = tmp_path / "host.sock"
    log = tmp_path / "stages.log"
    host = subprocess.Popen([sys.executable, "-m", "flows.warm_stages", "--socket", str(path), "--watch", str(dvc[0]),
                             "--started", repr(dvc[1]), "--modules", "tests.warm_target", "--preload", *preload, "--log", str(log)],
                            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return host, path, dvc


def call(path: Path, dvc: tuple[int, float], args: list[str], env: dict, cwd: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.warm_target", "call", str(path), str(dvc[0]), repr(dvc[1]), *args],
                            cwd=cwd, env={**env, "PYTHONPATH": str(PROJECT_ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def stop(host: subprocess.Popen) -> None:
    host.terminate()
    host.wait(timeout=10)


def test_the_host_runs_the_stage_in_the_callers_folder_with_its_streams_and_status(tmp_path, environment):
    host, path, dvc = start_host(tmp_path, environment)
    try:
        done = call(path, dvc, ["exit", "3"], environment, PROJECT_ROOT)
        out, err = done.communicate(timeout=60)
        assert done.returncode == 3, (out, err)
        assert f"cwd={PROJECT_ROOT}" in out and "copy=True" in out and "args=['exit', '3']" in out, out
        assert "declined" not in out and "to stderr" in err
        stage_pid = int(out.split("pid=")[1].split()[0])
        assert stage_pid not in (done.pid, host.pid)  # a forked copy of the host ran it
        assert "ran tests.warm_target exit 3" in (tmp_path / "stages.log").read_text()
    finally:
        stop(host)


def test_a_different_environment_makes_the_command_run_the_stage_itself(tmp_path, environment):
    host, path, dvc = start_host(tmp_path, environment)
    try:
        done = call(path, dvc, ["env", "EXEMPLAR_TEST_SETTING"], {**environment, "EXEMPLAR_TEST_SETTING": "7"}, PROJECT_ROOT)
        out, _ = done.communicate(timeout=60)
        assert done.returncode == 0
        assert "declined: ran it myself" in out and "copy=False" in out and "EXEMPLAR_TEST_SETTING=7" in out, out
        assert "different environment (EXEMPLAR_TEST_SETTING)" in (tmp_path / "stages.log").read_text()
    finally:
        stop(host)


def test_the_stage_sees_the_per_command_variables_of_its_command(tmp_path, environment):
    host, path, dvc = start_host(tmp_path, {**environment, "DVC_STAGE": "ingest"})
    try:
        done = call(path, dvc, ["env", "DVC_STAGE"], {**environment, "DVC_STAGE": "filter"}, PROJECT_ROOT)
        out, _ = done.communicate(timeout=60)
        assert "copy=True" in out and "DVC_STAGE=filter" in out, out
    finally:
        stop(host)


def test_a_caller_that_gave_up_waiting_never_has_its_stage_run_by_the_host(tmp_path, environment):
    host, path, dvc = start_host(tmp_path, environment)
    marker, log = tmp_path / "ran", tmp_path / "stages.log"
    try:
        gone = subprocess.run([sys.executable, "-m", "tests.warm_target", "give-up", str(path), str(dvc[0]), repr(dvc[1]),
                               "touch", str(marker)], cwd=PROJECT_ROOT, env=environment, timeout=60)
        assert gone.returncode == 0
        deadline = time.monotonic() + 20
        while not (log.exists() and "not run tests.warm_target" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "not run tests.warm_target: the caller stopped waiting" in log.read_text()
        assert not marker.exists()
    finally:
        stop(host)


def test_ctrl_c_reaches_the_stage_and_the_command_exits_as_it_would(tmp_path, environment):
    host, path, dvc = start_host(tmp_path, environment)
    try:
        done = call(path, dvc, ["wait"], environment, PROJECT_ROOT)
        assert done.stdout.readline().startswith("stage pid=")
        assert done.stdout.readline().strip() == "waiting"
        done.send_signal(signal.SIGINT)
        done.wait(timeout=30)
        assert done.returncode == 130
    finally:
        stop(host)


def test_a_module_that_cannot_be_preloaded_is_skipped_and_the_host_still_serves(tmp_path, environment):
    host, path, dvc = start_host(tmp_path, environment, preload=("json", "exemplar_no_such_module"))
    try:
        done = call(path, dvc, ["exit", "0"], environment, PROJECT_ROOT)
        out, _ = done.communicate(timeout=60)
        assert done.returncode == 0 and "copy=True" in out, out
        assert "could not preload exemplar_no_such_module" in (tmp_path / "stages.log").read_text()
    finally:
        stop(host)


def test_the_host_stops_with_the_dvc_process_it_serves(tmp_path, environment):
    dvc = subprocess.Popen(["sleep", "2"])
    host, _path, _dvc = start_host(tmp_path, environment, watch=dvc.pid)
    dvc.wait()
    assert host.wait(timeout=30) == 0


def test_the_host_refuses_to_fork_after_an_import_started_a_python_thread(tmp_path, environment):
    host, path, dvc = start_host(tmp_path, environment, preload=("tests.warm_thread",))
    assert host.wait(timeout=60) == 1
    assert "not serving: importing tests.warm_thread started Python thread(s)" in (tmp_path / "stages.log").read_text()
    done = call(path, dvc, ["exit", "0"], environment, PROJECT_ROOT)
    out, _ = done.communicate(timeout=60)
    assert "declined: ran it myself" in out
