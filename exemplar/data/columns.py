"""Feature columns of a table as stored: their type, their values with missing cells kept, their
content hash, and the per-column facts (missing cells, all-missing or constant columns) that ingest
records as warnings.

Three types, decided once per column by the reader (see :func:`arrow_feature_type` and
:func:`text_column_type`): ``numeric`` (float64, NaN where missing; infinities are kept as given and
treated as missing by the encoding), ``categorical`` (text, None where missing) and ``boolean``
(True/False, None where missing). Nothing here fits a model: the encoding lives in encoding.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

FEATURE_TYPES = ("numeric", "categorical", "boolean")
ARROW_TYPES = {"numeric": pa.float64(), "categorical": pa.string(), "boolean": pa.bool_()}
# the cells pandas.read_csv reads as missing by default (a CSV user expects the same here)
NA_TEXT = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
     "NULL", "NaN", "None", "n/a", "nan", "null"}
)
PARQUET_NA_TEXT = frozenset({""})  # typed Parquet columns: only nulls and empty text are missing
BOOLEAN_TEXT = {"true": True, "false": False}

log = logging.getLogger("exemplar.data")


def arrow_feature_type(kind: pa.DataType) -> str | None:
    """The feature type of a Parquet column's Arrow type, or None when it cannot be a feature."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numeric"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return "categorical"  # an all-null column (Arrow type null) is kept, and warned about as all-missing
    return None


def text_column_type(cells: pd.Series) -> str:
    """The type of a CSV column from a sample of its text cells: ``numeric`` when at most half of the
    filled cells fail to parse as numbers, ``boolean`` when every filled cell is true/false (any case),
    else ``categorical``."""
    return text_column_types(cells.to_frame())[0]


def text_column_types(frame: pd.DataFrame) -> list[str]:
    """:func:`text_column_type` of every column of `frame` at once: one parse of all (N, F) cells, so
    the cost per column stays one cheap conversion (a 100,000-column CSV must not take minutes)."""
    text = stripped_text(frame)
    filled = ~np.isin(text, list(NA_TEXT))
    is_number = ~np.isnan(parse_numbers(text)) & filled
    counts = filled.sum(axis=0)
    numeric = (counts == 0) | (is_number.sum(axis=0) >= 0.5 * counts)
    lower = pd.Series(text.ravel(), dtype=object).str.lower().to_numpy(dtype=object).reshape(text.shape)
    boolean = (np.isin(lower, list(BOOLEAN_TEXT)) | ~filled).all(axis=0)
    return ["numeric" if n else "boolean" if b else "categorical" for n, b in zip(numeric, boolean)]


def stripped_text(frame: pd.DataFrame) -> np.ndarray:
    """(N, F) object array of the cells' text with surrounding spaces removed (one conversion)."""
    flat = pd.Series(frame.to_numpy(dtype=object).ravel(), dtype=object).astype(str).str.strip()
    return flat.to_numpy(dtype=object).reshape(frame.shape)


def parse_numbers(cells: np.ndarray) -> np.ndarray:
    """(N, F) float64 of text cells, NaN where a cell is not a number: one parse for every cell."""
    if cells.size == 0:
        return np.empty(cells.shape, dtype=np.float64)
    flat = pd.to_numeric(pd.Series(cells.ravel(), dtype=object), errors="coerce")
    return flat.to_numpy(dtype=np.float64, na_value=np.nan).reshape(cells.shape)


def typed_column(values: pd.Series, kind: str, na_text: frozenset = NA_TEXT) -> pd.Series:
    """`values` in the stored form of `kind`: float64 with NaN, or objects (str / bool) with None;
    text cells in `na_text` (after stripping spaces) are missing."""
    if kind == "numeric":
        return values if values.dtype == np.float64 else pd.to_numeric(values, errors="coerce").astype(np.float64)
    missing = values.isna().to_numpy() | values.astype(str).str.strip().isin(na_text).to_numpy()
    if kind == "boolean":
        cells = values.map(lambda v: v if isinstance(v, (bool, np.bool_)) else BOOLEAN_TEXT.get(str(v).strip().lower()))
        missing |= cells.isna().to_numpy()
    else:
        cells = values.astype(object).map(str)
    return pd.Series(np.where(missing, None, cells.to_numpy(dtype=object)), index=values.index, dtype=object)


def typed_features(frame: pd.DataFrame, names: list[str], types: list[str], na_text: frozenset = NA_TEXT) -> pd.DataFrame:
    """The feature columns `names` of `frame` in their stored form (see :func:`typed_column`); numeric
    columns held as text are parsed together, in one call."""
    as_text = [n for n, kind in zip(names, types) if kind == "numeric" and pd.api.types.is_string_dtype(frame[n].dtype)]
    parsed = parse_numbers(frame[as_text].to_numpy(dtype=object)) if as_text else None
    numbers = {name: pd.Series(parsed[:, j]) for j, name in enumerate(as_text)}
    columns = {name: numbers[name] if name in numbers else typed_column(frame[name], kind, na_text).reset_index(drop=True)
               for name, kind in zip(names, types)}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def empty_features(rows: int, names: list[str], types: list[str]) -> pd.DataFrame:
    """`rows` rows of all-missing features in their stored form."""
    return pd.DataFrame({n: pd.Series([np.nan if k == "numeric" else None] * rows, dtype=np.float64 if k == "numeric" else object)
                         for n, k in zip(names, types)})


def unparsed_cells(text: pd.DataFrame, parsed: pd.DataFrame) -> np.ndarray:
    """(N, F) bool: a filled text cell of a numeric column that is not a number (it becomes missing)."""
    return ~np.isin(stripped_text(text), list(NA_TEXT)) & parsed.isna().to_numpy()


def row_hashes(features: pd.DataFrame, types: list[str]) -> list[str]:
    """One BLAKE2b-128 hex digest per row of the stored feature values (NaN/None hash alike).

    All-numeric rows hash their float64 bytes exactly as before text columns existed; other columns
    add their text (None as a control character) after the numbers.
    """
    from exemplar.data.canonical import hash_bytes

    numeric = [name for name, kind in zip(features.columns, types) if kind == "numeric"]
    values = np.array(features[numeric].to_numpy(dtype=np.float64), order="C")  # a copy: NaNs are rewritten below
    values[np.isnan(values)] = np.nan  # one NaN bit pattern, so equal rows hash equal
    is_numeric = set(numeric)  # a set: a list here made wide tables quadratic in their columns
    others = [name for name in features.columns if name not in is_numeric]
    if not others:
        return [hash_bytes(row.tobytes()) for row in values]
    text = features[others].astype(object).where(features[others].notna(), "\x00").astype(str).to_numpy()
    return [hash_bytes(row.tobytes() + "\x1f".join(cells).encode()) for row, cells in zip(values, text)]


def is_missing(column: pd.Series) -> np.ndarray:
    """(N,) bool: the cell is missing (None/NaN, or an infinite number)."""
    if column.dtype.kind == "f":
        return ~np.isfinite(column.to_numpy())
    return column.isna().to_numpy()


@dataclass
class ColumnProfile:
    """Running per-column facts over batches: missing cells (all rows) and, over training rows,
    whether a column is all-missing or constant. Memory: a few values per column."""

    names: list[str]
    missing: dict[str, int] = field(default_factory=dict)
    train_filled: dict[str, int] = field(default_factory=dict)
    train_missing: dict[str, int] = field(default_factory=dict)
    first: dict[str, object] = field(default_factory=dict)
    varies: dict[str, bool] = field(default_factory=dict)
    rows_with_missing: int = 0

    def update(self, features: pd.DataFrame, is_train: np.ndarray) -> "ColumnProfile":
        """Add a batch: `features` (N, F) stored values, `is_train` (N,) bool."""
        any_missing = np.zeros(len(features), dtype=bool)
        for name in self.names:
            missing = is_missing(features[name])
            any_missing |= missing
            self.missing[name] = self.missing.get(name, 0) + int(missing.sum())
            values = features[name].to_numpy()[is_train & ~missing]
            self.train_missing[name] = self.train_missing.get(name, 0) + int((is_train & missing).sum())
            self.train_filled[name] = self.train_filled.get(name, 0) + len(values)
            if len(values):
                self.first.setdefault(name, values[0])
                self.varies[name] = self.varies.get(name, False) or bool((values != self.first[name]).any())
        self.rows_with_missing += int(any_missing.sum())
        return self

    def problems(self) -> dict[str, str]:
        """{column: "all_missing" | "constant"} for columns that carry no information in training rows.

        A column with one distinct value but some missing cells is kept: its missingness is information.
        """
        out = {}
        for name in self.names:
            if not self.train_filled.get(name):
                out[name] = "all_missing"
            elif not self.varies.get(name) and not self.train_missing.get(name):
                out[name] = "constant"
        return out

    def warnings(self) -> list[dict]:
        """One record per problem column: column, problem, detail (plain words)."""
        details = {
            "all_missing": "no training row has a value; the column is left out of the model inputs",
            "constant": "every training row has the same value ({value!r}); the column is left out of the model inputs",
        }
        return [
            {"column": name, "problem": problem, "detail": details[problem].format(value=_plain(self.first.get(name)))}
            for name, problem in self.problems().items()
        ]


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def log_warnings(warnings: list[dict], source: str) -> None:
    """Log each column warning on the ``exemplar.data`` logger (WARNING level)."""
    for warning in warnings:
        log.warning("%s: column %r is %s: %s", source, warning["column"], warning["problem"].replace("_", "-"), warning["detail"])
