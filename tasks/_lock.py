"""One writer per run directory: an exclusive lock on ``out_dir/.exemplar.lock`` held for the whole run.

The lock is an ``fcntl.flock`` on that file, so the kernel releases it when its holder dies (even by
SIGKILL): a lock left by a dead process is taken over without anyone deciding it is stale. The file
records the holder (pid, host, start time, command) so a second run can say who is writing. Where
``flock`` is not available (some network file systems), a lock file whose pid is dead on this host is
taken over the same way.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from exemplar.errors import ExemplarError

LOCK_NAME = ".exemplar.lock"


class RunLock:
    """Exclusive writer lock on a run directory; use as a context manager or acquire()/release()."""

    def __init__(self, root: Path, wait_seconds: float = 0.0, poll_seconds: float = 0.2):
        self.path = Path(root) / LOCK_NAME
        self.wait_seconds = float(wait_seconds)
        self.poll_seconds = poll_seconds
        self._handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (waiting up to `wait_seconds`), or raise ExemplarError naming the holder."""
        deadline = time.monotonic() + self.wait_seconds
        while not self._try_once():
            if time.monotonic() >= deadline:
                raise ExemplarError(self._held_message())
            time.sleep(self.poll_seconds)
        self._write_holder()

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlink first: a waiter that locks the old inode re-checks it
        finally:
            self._handle.close()  # closing drops the flock
            self._handle = None

    def _try_once(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP):
                return self._try_without_flock()
            raise
        if not _same_file(handle, self.path):  # the previous holder unlinked it between our open and lock
            handle.close()
            return False
        self._handle = handle
        return True

    def _try_without_flock(self) -> bool:
        holder = read_holder(self.path)
        if holder and holder.get("host") == socket.gethostname() and pid_alive(int(holder.get("pid", 0))):
            return False
        self._handle = open(self.path, "a+")
        return True

    def _write_holder(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(sys.argv)[:500]}
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(info))
        self._handle.flush()

    def _held_message(self) -> str:
        holder = read_holder(self.path) or {}
        who = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
        return (
            f"out_dir {self.path.parent} is being written by another exemplar run ({who}; lock file {self.path}). "
            "Two runs into one folder would mix their results. Fix: wait for that run to finish, choose another "
            "out_dir, or add lock_wait_seconds=600 to wait for it."
        )


def read_holder(path: Path) -> dict | None:
    """The holder recorded in a lock file, or None when it is absent or unreadable."""
    try:
        return json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _same_file(handle, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
