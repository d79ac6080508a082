"""Duplicate-id detection over the whole input in 8 bytes per row.

Pass 1 keeps one keyed 64-bit hash per row (SipHash-2-4, as ``pandas.util.hash_array`` computes it)
instead of the id strings. At the end of the pass the hashes are sorted in place and the values that
occur more than once are kept (few: one per repeated id, plus a chance collision with probability
about N^2 / 2^65, 3e-8 at a million rows). Only when there are such values are the ids read once more,
and only the rows whose hash is one of them are compared by their actual id strings, so a hash
collision between two different ids never marks a row as a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_HASH_KEY = "exemplar-ids-one"  # 16 bytes: the SipHash key


def id_hashes(ids: pd.Series) -> np.ndarray:
    """(N,) uint64: SipHash-2-4 of each id's text; equal ids give equal hashes."""
    if not len(ids):
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_array(ids.astype(str).to_numpy(dtype=object), hash_key=_HASH_KEY)


def repeated_values(hashes: np.ndarray) -> np.ndarray:
    """Sorted unique values that occur more than once in `hashes` (N,); sorts `hashes` in place."""
    hashes.sort()
    repeats = hashes[1:][hashes[1:] == hashes[:-1]]
    return np.unique(repeats)


def is_one_of(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each of `values` is in `sorted_set` (sorted, unique, small)."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


@dataclass
class DuplicateIds:
    """Rows whose id repeats an earlier row's id, and the row that used it first (input row numbers)."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sorted
    first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, row: int) -> bool:
        at = np.searchsorted(self.rows, row)
        return bool(at < len(self.rows) and self.rows[at] == row)

    def __getitem__(self, row: int) -> int:
        """The first row that used the id of `row` (KeyError when `row` is not a duplicate)."""
        if row not in self:
            raise KeyError(row)
        return int(self.first[np.searchsorted(self.rows, row)])

    def as_dict(self) -> dict[int, int]:
        return {int(r): int(f) for r, f in zip(self.rows, self.first)}


def find_duplicate_ids(
    hashes: np.ndarray, id_batches: Iterable[pd.Series], hash_ids: Callable[[pd.Series], np.ndarray] = id_hashes
) -> DuplicateIds:
    """Exact duplicate ids given every row's hash (`hashes`, (N,) uint64 from `hash_ids`, sorted in place
    and so consumed) and, lazily, the ids again in the same order (`id_batches`, read only if some hash
    repeats)."""
    repeated = repeated_values(hashes)
    if not len(repeated):
        return DuplicateIds()
    first_row_of: dict[str, int] = {}  # only ids whose hash repeats: proportional to the duplicates
    rows, first, offset = [], [], 0
    for ids in id_batches:
        for i in np.flatnonzero(is_one_of(hash_ids(ids), repeated)).tolist():
            row = offset + i
            earlier = first_row_of.setdefault(str(ids.iat[i]), row)
            if earlier != row:
                rows.append(row), first.append(earlier)
        offset += len(ids)
    return DuplicateIds(np.array(rows, dtype=np.int64), np.array(first, dtype=np.int64))
