"""Atomic file writes: every output is written to a temp file in the same folder, then renamed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temp))
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def write_parquet(table: pd.DataFrame | pa.Table, path: Path) -> Path:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    return _atomic(path, lambda temp: pq.write_table(table, temp))


def write_json(payload: dict, path: Path) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=True, default=_plain)
    return _atomic(path, lambda temp: temp.write_text(text + "\n"))


def write_text(text: str, path: Path) -> Path:
    return _atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
