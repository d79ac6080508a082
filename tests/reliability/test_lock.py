"""One writer per run directory: a second writer fails at once naming the holder, waits when asked,
and takes over the lock of a killed holder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from exemplar.errors import ExemplarError
from tasks._lock import LOCK_NAME, RunLock, read_holder

HOLD = "import sys, time; from tasks._lock import RunLock; l = RunLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(float(sys.argv[2])); l.release()"


def _holder(tmp_path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), str(seconds)], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "held"
    return process


def test_second_writer_fails_at_once_naming_the_holder(tmp_path):
    holder = _holder(tmp_path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(ExemplarError, match=rf"pid {holder.pid} on host {socket.gethostname()}.*Fix:"):
            RunLock(tmp_path).acquire()
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path):
    holder = _holder(tmp_path, 30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert read_holder(tmp_path / LOCK_NAME)["pid"] == holder.pid  # the dead holder's record is still there
    with RunLock(tmp_path) as lock:
        assert read_holder(lock.path)["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_waiting_writer_gets_the_lock_when_the_holder_finishes(tmp_path):
    holder = _holder(tmp_path, 0.5)
    with RunLock(tmp_path, wait_seconds=30, poll_seconds=0.05):
        assert holder.wait(timeout=30) == 0


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(ExemplarError, match="another exemplar run"):
            RunLock(tmp_path).acquire()
