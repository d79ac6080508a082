"""What every input reader yields: :class:`RawBatch`, rows in their original form before validation.

A reader is any object with ``source`` (str, for messages), ``modality`` ("image" or "table"),
``feature_names`` (list[str], tables), optionally ``feature_types`` (one of columns.FEATURE_TYPES per
feature; all numeric when absent), ``label_names`` (list[str] or None: when set, labels are
integer indexes into it) and ``batches(with_data: bool) -> Iterator[RawBatch]``; optionally
``row_count`` (int: the number of rows, when known without reading them, used to reserve the per-row
bookkeeping of pass 1 at once). Ingestion reads
the input twice (keys first, then data), so ``batches`` must yield the same rows in the same
order every time; with ``with_data=False`` a table reader may leave ``features`` out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

KEY_COLUMNS = ("id", "label", "split", "file", "row", "problem", "detail", "original")


@dataclass
class RawBatch:
    """One batch of source rows.

    ``keys``: one row per source row with columns :data:`KEY_COLUMNS`: ``id`` (str), ``label``
    (raw value; None/NaN/"" when missing), ``split`` (raw text, or None when the source has no split),
    ``file`` and ``row`` (where the row came from), ``problem`` ("" or a quarantine reason found while
    reading) with its ``detail``, and ``original`` (text kept for the quarantine, e.g. an image path).
    Data, by modality: ``images`` (encoded bytes per row, None when unreadable), ``arrays``
    (uint8 (N, C, H, W) decoded images), or ``features`` ((N, F) in the stored form of each column's
    type: float64 with NaN, or text / booleans with None where missing; see columns.py).
    """

    keys: pd.DataFrame
    images: list[bytes | None] | None = None
    arrays: np.ndarray | None = None
    features: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.keys)


class Reader(Protocol):
    source: str
    modality: str
    feature_names: list[str]
    label_names: list[str] | None

    def batches(self, with_data: bool) -> Iterator[RawBatch]: ...


def make_keys(
    ids: list[str],
    labels: object,
    splits: object,
    file: str | list[str],
    rows: object,
    problems: list[str] | None = None,
    details: list[str] | None = None,
    originals: list[str] | None = None,
) -> pd.DataFrame:
    """Assemble the ``keys`` frame of a :class:`RawBatch` (lists or arrays of equal length N)."""
    n = len(ids)
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=object),
            "label": pd.Series(labels, dtype=object) if not isinstance(labels, pd.Series) else labels.reset_index(drop=True),
            "split": pd.Series([None] * n if splits is None else list(splits), dtype=object),
            "file": [file] * n if isinstance(file, str) else list(file),
            "row": np.asarray(rows, dtype=np.int64),
            "problem": problems or [""] * n,
            "detail": details or [""] * n,
            "original": originals or [""] * n,
        }
    )


def row_ids(start: int, count: int, prefix: str = "row") -> list[str]:
    """Stable ids for sources without an id column: ``row-0000000``, ``row-0000001``, ..."""
    return [f"{prefix}-{i:07d}" for i in range(start, start + count)]
