"""Turning raw labels, seen batch by batch, into contiguous class codes 0..K-1 with class names.

Numbers (including numeric text such as "3" from a CSV) are ordered numerically and named by their
text ("3"); other labels are ordered by name. When a column mixes both, the kind held by most rows
wins: text in a mostly numeric column is an ``invalid_label``; otherwise numbers are treated as names.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MISSING = -1  # temporary index of a missing label


def label_key(value: object) -> tuple[str, object] | None:
    """("num", int|float) or ("text", str) for a raw label; None when it is missing."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return ("text", str(bool(value)))
    if isinstance(value, (int, np.integer)):
        return ("num", int(value))
    if isinstance(value, (float, np.floating)):
        return _number(float(value)) if math.isfinite(value) else ("text", str(value))
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none", "null", "na"):
        return None
    try:
        number = float(text)
    except ValueError:
        return ("text", text)
    return _number(number) if math.isfinite(number) else ("text", text)


def _number(value: float) -> tuple[str, object]:
    return ("num", int(value)) if value.is_integer() else ("num", value)


def key_name(key: tuple[str, object]) -> str:
    return str(key[1])


class LabelCollector:
    """Collects distinct labels over batches; per row it keeps a small temporary index only.

    ``add(labels)`` returns (N,) int32 temporary indexes (:data:`MISSING` for missing labels);
    ``resolve(counts)`` maps temporary indexes to final codes given row counts per temporary index.
    """

    def __init__(self, label_names: list[str] | None = None):
        self.label_names = label_names
        self.keys: list[tuple[str, object]] = []
        self._index: dict[tuple[str, object], int] = {}

    def add(self, labels: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(labels.astype(object), use_na_sentinel=True)
        lookup = np.array([self._temporary(label_key(u)) for u in uniques] + [MISSING], dtype=np.int32)
        return lookup[codes]  # code -1 (NaN) picks the trailing MISSING

    def _temporary(self, key: tuple[str, object] | None) -> int:
        if key is None:
            return MISSING
        if key not in self._index:
            self._index[key] = len(self.keys)
            self.keys.append(key)
        return self._index[key]

    def resolve(self, counts: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Final code per temporary index (-1 = invalid label, or no usable row) and the class names.

        `counts`: (T,) rows per temporary index among usable rows; keys with 0 rows get no class.
        """
        present = [k for k, n in zip(self.keys, counts) if n > 0]
        valid = self._valid_keys(present, counts)
        order = sorted(valid, key=self._sort_key(valid))
        code_of = {key: code for code, key in enumerate(order)}
        mapping = np.array([code_of.get(k, -1) for k in self.keys], dtype=np.int64)
        return mapping, [self._name(k) for k in order]

    def _valid_keys(self, present: list, counts: np.ndarray) -> list:
        if self.label_names is not None:
            size = len(self.label_names)
            return [k for k in present if k[0] == "num" and isinstance(k[1], int) and 0 <= k[1] < size]
        rows = {k: int(counts[self._index[k]]) for k in present}
        numeric = sum(n for k, n in rows.items() if k[0] == "num")
        if numeric * 2 > sum(rows.values()):
            return [k for k in present if k[0] == "num"]
        return present

    @staticmethod
    def _sort_key(valid: list):
        if all(k[0] == "num" for k in valid):
            return lambda k: k[1]
        return key_name

    def _name(self, key: tuple[str, object]) -> str:
        return self.label_names[key[1]] if self.label_names is not None else key_name(key)
