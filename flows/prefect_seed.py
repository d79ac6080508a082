"""A ready Prefect database for fresh Prefect homes, made once at set-up.

A Prefect server on a fresh ``PREFECT_HOME`` first migrates an empty SQLite database and registers its
block types: 7.3 s on a quiet 2-core machine, against 2.7 s on a database that has both. Every fresh
home pays it: a new clone, a ``dvc exp run`` in a temporary workspace, a benchmark's scratch folder.
``make setup`` runs this module once per environment: it starts Prefect's server on an empty home, waits
for it to answer, stops it, and keeps the migrated database (and Prefect's record that its blocks are
registered) in ``<venv>/share/exemplar/prefect-seed``. :func:`seed_home` copies it into a home that has
no database yet, just before a server is started there.

    python -m flows.prefect_seed            # make the seed (make setup does this)

Nothing is copied with ``EXEMPLAR_PREFECT_SEED=0``, when the home already has a database, when Prefect is configured with another
database (``PREFECT_API_DATABASE_CONNECTION_URL`` / ``PREFECT_SERVER_DATABASE_CONNECTION_URL``), or when
the seed was made by another Prefect version. Only the standard library is imported: servers are
started while the command is still importing.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

SEED_DIR = Path(sys.prefix) / "share" / "exemplar" / "prefect-seed"
DATABASE = "prefect.db"
MEMO = "memo_store.toml"  # Prefect's note that the block types in the database are registered
VERSION = "prefect-version.txt"
DATABASE_SETTINGS = ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")


def prefect_version() -> str:
    return metadata.version("prefect")


def seed_home(environ: Mapping[str, str] | None = None, seed_dir: Path = SEED_DIR) -> bool:
    """Copy the seed database into ``$PREFECT_HOME`` when that home has none yet; True if copied."""
    environ = os.environ if environ is None else environ
    home = environ.get("PREFECT_HOME")
    if not home or environ.get("EXEMPLAR_PREFECT_SEED") == "0" or any(environ.get(name) for name in DATABASE_SETTINGS) or not _usable(seed_dir):
        return False
    home_dir = Path(home).expanduser()
    if (home_dir / DATABASE).exists() or _profile_sets_database(home_dir):
        return False
    home_dir.mkdir(parents=True, exist_ok=True)
    for name in (DATABASE, MEMO):
        temp = home_dir / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(seed_dir / name, temp)
        os.replace(temp, home_dir / name)  # a server started meanwhile by another process sees all or nothing
    return True


def _usable(seed_dir: Path) -> bool:
    try:
        return (seed_dir / VERSION).read_text().strip() == prefect_version() and (seed_dir / DATABASE).is_file() \
            and (seed_dir / MEMO).is_file()
    except (OSError, metadata.PackageNotFoundError):
        return False


def _profile_sets_database(home: Path) -> bool:
    """Whether a Prefect profile in `home` chooses a database of its own."""
    try:
        return "DATABASE" in (home / "profiles.toml").read_text()
    except OSError:
        return False


def make_seed(seed_dir: Path = SEED_DIR, timeout: float = 180) -> Path:
    """Start Prefect's server on an empty home until it answers, stop it, keep its database."""
    from flows.early_server import SERVER_ENVIRONMENT, _healthy, free_port, server_command, stop

    with tempfile.TemporaryDirectory(prefix="exemplar-prefect-seed-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        environ = {key: value for key, value in os.environ.items() if key not in DATABASE_SETTINGS and key != "PREFECT_API_URL"}
        environ.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", **SERVER_ENVIRONMENT)
        port = free_port()
        server = subprocess.Popen(server_command(port), env=environ, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if not _healthy(server, port, timeout):
                raise RuntimeError(f"Prefect's server did not answer within {timeout:.0f} s (exit status {server.poll()}): "
                                   f"{server.stderr.read().decode()[-2000:] if server.poll() is not None else ''}")
        finally:
            stop(server, timeout=10)
        with sqlite3.connect(home / DATABASE) as database:  # fold the write-ahead log into the file
            database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        staging = Path(tempfile.mkdtemp(prefix=".prefect-seed-", dir=_parent(seed_dir)))
        for name in (DATABASE, MEMO):
            shutil.copyfile(home / name, staging / name)
        (staging / VERSION).write_text(prefect_version() + "\n")
        staging.chmod(0o755)
    shutil.rmtree(seed_dir, ignore_errors=True)
    os.replace(staging, seed_dir)
    return seed_dir


def _parent(seed_dir: Path) -> Path:
    seed_dir.parent.mkdir(parents=True, exist_ok=True)
    return seed_dir.parent


def main() -> int:
    import flows  # noqa: F401  (quiet, offline Prefect defaults)

    if _usable(SEED_DIR):
        return 0
    started = time.monotonic()
    try:
        where = make_seed()
    except (OSError, RuntimeError, sqlite3.Error) as error:  # an optimisation only: set-up goes on without it
        print(f"exemplar: warning: no seeded Prefect database ({error}); fresh Prefect homes migrate their own "
              "(about 4 s more on their first server start).", file=sys.stderr)
        return 0
    print(f"prepared a migrated Prefect database for fresh Prefect homes in {where} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
