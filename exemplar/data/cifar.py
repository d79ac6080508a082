"""Safe reading of the CIFAR-10/100 "python version" batches (pickled dicts of numpy arrays).

``pickle.load`` on a downloaded file can run arbitrary code. :class:`RestrictedUnpickler` resolves
only the globals a numpy array needs (``_reconstruct``, ``ndarray``, ``dtype`` and, for protocol-2
files written by Python 3, ``_codecs.encode``); anything else raises ``pickle.UnpicklingError``.
Dicts, lists, bytes, strings and numbers are built by pickle opcodes, not globals, so they load.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from exemplar.errors import ExemplarError

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load '{module}.{name}' (not part of the CIFAR format)")
        return super().find_class(module, name)


def load_batch(path: Path) -> dict[str, object]:
    """One CIFAR batch or meta file as a dict with text keys (the originals use bytes keys)."""
    try:
        with open(path, "rb") as handle:
            loaded = RestrictedUnpickler(io.BufferedReader(handle), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, OSError) as error:
        raise ExemplarError(
            f"{path} is not a CIFAR python-version batch ({error}). "
            "Fix: point data.path at the extracted cifar-10-batches-py or cifar-100-python folder."
        ) from error
    if not isinstance(loaded, dict):
        raise ExemplarError(f"{path} does not hold a CIFAR batch dict (found {type(loaded).__name__}). Fix: use the original CIFAR files.")
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in loaded.items()}


def text_list(values: object) -> list[str]:
    """A list of bytes/str names (e.g. ``label_names``) as str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def batch_images(batch: dict[str, object], path: Path) -> np.ndarray:
    """The batch's ``data`` (N, 3072) uint8 as images (N, 3, 32, 32)."""
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", None)
        raise ExemplarError(f"{path}: 'data' should be a (N, 3072) uint8 array, found {shape}. Fix: use the original CIFAR files.")
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32)
