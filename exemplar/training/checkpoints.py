"""Checkpoint files: written atomically (temp file, fsync, rename), so a file is complete or absent.

A checkpoint is a dict of tensors and plain values (loadable with ``torch.load(weights_only=True)``):
``epoch`` (1-based), ``lr`` (mean learning rate over the steps since the previous checkpoint, the
TracIn step size), ``lr_last``, ``model``, ``optimizer``, ``scheduler``, ``rng``, ``step_lr_sum``,
``step_count`` and ``meta`` (what is needed to rebuild the model).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PATTERN = re.compile(r"^epoch_(\d{4,})\.pt$")


def checkpoint_path(directory: Path, epoch: int) -> Path:
    return Path(directory) / f"epoch_{epoch:04d}.pt"


def save_checkpoint(state: dict, path: Path) -> None:
    """Write `state` to `path` atomically: an error removes the temp file; a killed process leaves at
    most a ``*.tmp`` file, which :func:`list_checkpoints` never returns (the next save overwrites it)."""
    import torch  # here, not at the top: listing checkpoints (report, run-folder checks) needs no torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    try:
        with open(temp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint safely (tensors and plain containers only)."""
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=True)


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoint files in `directory`, ordered by epoch (temp files are ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: Path) -> Path | None:
    paths = list_checkpoints(directory)
    return paths[-1] if paths else None
