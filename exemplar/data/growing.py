"""Helpers for the per-row bookkeeping of ingestion: a 1-D NumPy array filled batch by batch, and a
bincount that does not make an int64 copy of all its input at once."""

from __future__ import annotations

import numpy as np


class GrowingArray:
    """Values appended batch by batch into one buffer, grown by 1.5x with ``ndarray.resize`` (a C
    ``realloc``, which extends in place when it can), so no per-batch pieces pile up in the heap.

    ``finish()`` returns the (size,) array, trimmed in place, and empties the buffer.
    """

    def __init__(self, dtype, capacity: int = 0) -> None:
        """`capacity`: rows to reserve up front (e.g. the row count in a Parquet footer); a calloc, so
        pages that are never filled are never resident."""
        self.dtype = np.dtype(dtype)
        self._data = np.zeros(max(int(capacity), 0), dtype=self.dtype)
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self._data):
            # the buffer is never handed out before finish(), so no view can see the move
            self._data.resize(max(end, len(self._data) * 3 // 2, 1024), refcheck=False)
        self._data[self.size : end] = values
        self.size = end

    def finish(self) -> np.ndarray:
        data, self._data, size = self._data, np.zeros(0, dtype=self.dtype), self.size
        self.size = 0
        data.resize(size, refcheck=False)
        return data


def bincount(values: np.ndarray, size: int, chunk: int = 1 << 20) -> np.ndarray:
    """(size,) int64 ``np.bincount(values, minlength=size)`` for `values` (N,) in [0, size), counted in
    chunks: NumPy converts its input to int64 first, 8 bytes per row at once otherwise."""
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(values), chunk):
        counts += np.bincount(values[start : start + chunk], minlength=size)
    return counts
