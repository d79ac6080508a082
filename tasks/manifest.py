"""The run directory's record of what each stage produced: ``out_dir/manifest.json``.

Helpers only (hashing, reading, updating, comparing settings); the rules that use them live in
:class:`tasks.layout.RunLayout`. The manifest holds

- ``config``: the settings the folder was written with (the sections that change results),
- ``data``: a fingerprint of every input file (path, size, mtime, content hash),
- ``stages``: one entry per stage (``train_seed<s>`` per model): ``status`` (running, complete,
  stale), ``config_hash``, ``config`` (the sections the stage reads), ``inputs`` (hash of every
  upstream output it read), ``outputs`` (hash, size and mtime of every file it wrote), ``result``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

MANIFEST_NAME = "manifest.json"
VERSION = 1
# settings that never change what a run produces (where it goes, how it is tracked or scheduled)
NOT_RESULTS = ("out_dir", "overwrite", "lock_wait_seconds", "tracking", "runner")


def file_hash(path: Path) -> str:
    """blake2b (16 bytes) of a file's content, read in 1 MiB blocks."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: Path) -> dict:
    """{hash, size, mtime_ns} of one file."""
    stat = Path(path).stat()
    return {"hash": file_hash(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def matches(path: Path, recorded: dict) -> bool:
    """Whether `path` still holds what `recorded` describes (content rehashed only when size or mtime moved)."""
    try:
        stat = Path(path).stat()
    except OSError:
        return False
    if stat.st_size != recorded["size"]:
        return False
    return stat.st_mtime_ns == recorded["mtime_ns"] or file_hash(path) == recorded["hash"]


def files_under(root: Path, relative_to: Path) -> list[Path]:
    """Every regular file under `root` (a file or a folder), as paths relative to `relative_to`, sorted."""
    root = Path(root)
    if root.is_file():
        return [root.relative_to(relative_to)]
    found = []
    for folder, _, names in os.walk(root):
        found.extend(Path(folder, name).relative_to(relative_to) for name in names if not name.endswith(".tmp"))
    return sorted(found)


def data_fingerprint(path: str | None) -> dict:
    """Fingerprints of every file of the configured input (empty for the embedded data)."""
    if not path:
        return {}
    root = Path(path).expanduser().resolve()
    base = root.parent if root.is_file() else root
    return {str(rel): fingerprint(base / rel) for rel in files_under(root, base)}


def data_differences(recorded: dict, path: str | None) -> list[str]:
    """Input files added, removed or changed since `recorded` (content compared when size/mtime moved)."""
    if not path:
        return [] if not recorded else [f"input files {sorted(recorded)[:5]} were recorded, now the embedded data is used"]
    root = Path(path).expanduser().resolve()
    base = root.parent if root.is_file() else root
    now = {str(rel) for rel in files_under(root, base)} if root.exists() else set()
    changes = [f"{name} is new" for name in sorted(now - set(recorded))]
    changes += [f"{name} is gone" for name in sorted(set(recorded) - now)]
    changes += [f"{name} changed" for name in sorted(now & set(recorded)) if not matches(base / name, recorded[name])]
    return changes


def result_config(cfg: dict) -> dict:
    """The settings that decide a run's results (everything but NOT_RESULTS)."""
    return {key: value for key, value in cfg.items() if key not in NOT_RESULTS}


def config_hash(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def differences(old: object, new: object, prefix: str = "") -> list[str]:
    """Human-readable differences between two settings trees, e.g. ``train.epochs: 3 -> 5``."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}{key}"
            if key not in old:
                found.append(f"{name}: (absent) -> {new[key]!r}")
            elif key not in new:
                found.append(f"{name}: {old[key]!r} -> (absent)")
            else:
                found.extend(differences(old[key], new[key], name + "."))
        return found
    if old == new or (isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)):
        return []
    return [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def read(root: Path) -> dict | None:
    """The manifest of `root`, or None when the folder has none."""
    path = Path(root) / MANIFEST_NAME
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write(root: Path, manifest: dict) -> None:
    """Replace the manifest atomically (temp file, fsync, rename)."""
    path = Path(root) / MANIFEST_NAME
    temp = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    with open(temp, "w") as handle:
        handle.write(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


@contextlib.contextmanager
def updating(root: Path) -> Iterator[dict]:
    """Read-modify-write the manifest under an flock (stage tasks of one run may finish in parallel)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".manifest.lock", "a") as guard:
        fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
        manifest = read(root) or {"version": VERSION, "stages": {}}
        yield manifest
        write(root, manifest)
