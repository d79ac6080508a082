"""Keep freed memory in the process during large batched passes (glibc only).

With glibc's default settings every large tensor is a fresh ``mmap`` that is returned to the kernel
when freed, so each batch of a scoring pass pays page faults again: on 2 cores this turned 60-88% of
the wall time into kernel work (docs/scoring.md, benchmarks/results/scoring.json). Raising the mmap
and trim thresholds (what ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` do at start-up) makes
freed blocks reusable. Applied by the score task itself, so users need not set the environment.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGEST = 2**31 - 1  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds to 2 GiB; False (and no change) on other C libraries."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST)) and bool(mallopt(M_TRIM_THRESHOLD, LARGEST))
