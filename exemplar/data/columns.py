"""Feature columns of a table as stored: their type, their values with missing cells kept, their
content hash, and the per-column facts (missing cells, all-missing or constant columns) that ingest
records as warnings.

Four types, decided once per column by the reader (see :func:`arrow_feature_type` and
:func:`text_column_type`): ``numeric`` (float64, NaN where missing; infinities are kept as given and
treated as missing by the encoding), ``categorical`` (text, None where missing), ``boolean``
(True/False, None where missing) and ``datetime`` (text, None where missing: a CSV cell as given, a
Parquet date or timestamp as pandas prints it, so the report shows what the user wrote; the encoding
reads it as a number of days, :func:`parse_dates`). Nothing here fits a model: the encoding lives in encoding.py.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

FEATURE_TYPES = ("numeric", "categorical", "boolean", "datetime")
ARROW_TYPES = {"numeric": pa.float64(), "categorical": pa.string(), "boolean": pa.bool_(), "datetime": pa.string()}
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
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
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "datetime"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numeric"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return "categorical"  # an all-null column (Arrow type null) is kept, and warned about as all-missing
    return None


def text_column_type(cells: pd.Series) -> str:
    """The type of a CSV column from a sample of its text cells: ``numeric`` when at most half of the
    filled cells fail to parse as numbers, ``boolean`` when every filled cell is true/false (any case),
    ``datetime`` when at most half fail to parse as ISO 8601 dates or times (``2021-03-04``,
    ``2021-03-04 12:30``, ``2021-03-04T12:30:00+02:00``; a day-first or month-first date such as
    ``04/03/2021`` is ambiguous and stays text), else ``categorical``."""
    return text_column_types(cells.to_frame())[0]


def text_column_types(frame: pd.DataFrame) -> list[str]:
    """:func:`text_column_type` of every column of `frame` at once (see :func:`text_types`)."""
    return text_types(frame.to_numpy(dtype=object))


def text_types(cells: np.ndarray) -> list[str]:
    """:func:`text_column_type` of every column of `cells` ((N, F) text) at once: one parse of all
    cells, so the cost per column stays a few numpy operations (a 100,000-column CSV must not take minutes)."""
    text = strip_cells(cells)
    filled = ~is_na_text(text)
    is_number = ~np.isnan(parse_numbers(text)) & filled
    counts = filled.sum(axis=0)
    numeric = (counts == 0) | (is_number.sum(axis=0) >= 0.5 * counts)
    lower = pd.Series(text.ravel(), dtype=object).str.lower().to_numpy(dtype=object).reshape(text.shape)
    boolean = (np.isin(lower, list(BOOLEAN_TEXT)) | ~filled).all(axis=0)
    dated = np.zeros(len(counts), dtype=bool)
    text_columns = np.flatnonzero(~numeric & ~boolean)
    if len(text_columns):  # one parse of the text columns' cells only
        is_date = ~np.isnan(parse_dates(text[:, text_columns])) & filled[:, text_columns]
        dated[text_columns] = is_date.sum(axis=0) >= 0.5 * counts[text_columns]
    return ["numeric" if n else "boolean" if b else "datetime" if d else "categorical" for n, b, d in zip(numeric, boolean, dated)]


def strip_cells(cells: np.ndarray) -> np.ndarray:
    """`cells` (any shape, objects) as text with surrounding spaces removed, in one pandas call."""
    flat = pd.Series(cells.ravel(), dtype=object).astype(str).str.strip()
    return flat.to_numpy(dtype=object).reshape(cells.shape)


def is_na_text(text: np.ndarray, na_text: frozenset = NA_TEXT) -> np.ndarray:
    """(same shape) bool: the stripped `text` cell reads as missing (one hashed look-up per cell)."""
    return pd.Series(text.ravel(), dtype=object).isin(na_text).to_numpy(copy=True).reshape(text.shape)


def parse_numbers(cells: np.ndarray) -> np.ndarray:
    """(N, F) float64 of text cells, NaN where a cell is not a number: one parse for every cell."""
    if cells.size == 0:
        return np.empty(cells.shape, dtype=np.float64)
    flat = pd.to_numeric(pd.Series(cells.ravel(), dtype=object), errors="coerce")
    return flat.to_numpy(dtype=np.float64, na_value=np.nan).reshape(cells.shape)


def parse_dates(cells: np.ndarray) -> np.ndarray:
    """(any shape) float64 days since 1970-01-01 UTC of ISO 8601 dates or times held as text (or as
    dates / timestamps), NaN where a cell is missing or not such a date. A time without an offset is
    read as UTC, one with an offset is converted to UTC: one parse for every cell."""
    if cells.size == 0:
        return np.empty(cells.shape, dtype=np.float64)
    flat = pd.Series(cells.ravel(), dtype=object).map(lambda v: v.strip() if isinstance(v, str) else v)
    stamps = pd.to_datetime(flat, format="ISO8601", utc=True, errors="coerce")
    days = (stamps - EPOCH) / pd.Timedelta(days=1)
    return days.to_numpy(dtype=np.float64, na_value=np.nan).reshape(cells.shape)


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
        cells = values.astype(object).map(date_text if kind == "datetime" else str)
    return pd.Series(np.where(missing, None, cells.to_numpy(dtype=object)), index=values.index, dtype=object)


def date_text(value: object) -> str:
    """A Parquet date or timestamp cell as text, the same whatever else is in its batch: ``2024-01-03``
    for a date or a zone-less midnight, else pandas' form (``2024-01-03 12:30:00``, ``...+02:00``)."""
    if isinstance(value, pd.Timestamp) and value.tz is None and value == value.normalize():
        return value.strftime("%Y-%m-%d")
    return str(value)


def typed_features(frame: pd.DataFrame, names: list[str], types: list[str], na_text: frozenset = NA_TEXT) -> pd.DataFrame:
    """The feature columns `names` of `frame` in their stored form (see :func:`typed_column`); numeric
    columns held as text are parsed together, in one call."""
    as_text = [n for n, kind in zip(names, types) if kind == "numeric" and pd.api.types.is_string_dtype(frame[n].dtype)]
    parsed = parse_numbers(frame[as_text].to_numpy(dtype=object)) if as_text else None
    numbers = {name: pd.Series(parsed[:, j]) for j, name in enumerate(as_text)}
    columns = {name: numbers[name] if name in numbers else typed_column(frame[name], kind, na_text).reset_index(drop=True)
               for name, kind in zip(names, types)}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def text_blocks(cells: np.ndarray, types: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The stored form of a CSV's text cells, as :func:`typed_features` gives it, in two blocks:
    (numbers (N, F_numeric) float64 of the numeric columns, NaN where a cell is not a number,
    objects (N, F_other) of the categorical and boolean columns), columns in the order of `types`.

    `cells` (N, F) holds the cells' text (str). Every step runs on whole blocks (all numeric columns
    in one parse, the text columns in one pass), so the cost per column is a few numpy operations
    whatever the width; :func:`block_frame` makes the frame.
    """
    kinds = np.asarray(types, dtype=object)
    numeric, others = np.flatnonzero(kinds == "numeric"), np.flatnonzero(kinds != "numeric")
    parsed = parse_numbers(cells if len(others) == 0 else cells[:, numeric])
    stored = _stored_text(cells[:, others], kinds[others]) if len(others) else np.empty((len(cells), 0), dtype=object)
    return parsed, stored


def _stored_text(text: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """(N, k) objects: categorical cells as str, boolean cells as True/False, None where missing
    (the cell reads as missing, or a boolean cell is not true/false); as :func:`typed_column` does."""
    missing = is_na_text(strip_cells(text))
    boolean = np.flatnonzero(kinds == "boolean")
    values = text.copy()
    if len(boolean):
        flags = np.array([BOOLEAN_TEXT.get(str(v).strip().lower()) for v in text[:, boolean].ravel()], dtype=object)
        values[:, boolean] = flags.reshape(len(text), len(boolean))
        missing[:, boolean] |= pd.isna(values[:, boolean])  # not true/false: missing
    values[missing] = None
    return values


def block_frame(names: list[str] | pd.Index, numeric: np.ndarray, values: np.ndarray, others: np.ndarray, objects: np.ndarray) -> pd.DataFrame:
    """(N, F) frame with columns `names` from two blocks: float64 `values` (N, len(numeric)) for the
    columns at positions `numeric`, objects `objects` (N, len(others)) at positions `others`. Built
    from whole blocks, never column by column (a frame assembled per column costs per column); pass
    `names` as a ``pd.Index`` to reuse it across batches."""
    index = names if isinstance(names, pd.Index) else pd.Index(names)
    parts = [pd.DataFrame(block, columns=index if len(positions) == len(index) else index[positions], dtype=dtype)
             for positions, block, dtype in ((numeric, values, np.float64), (others, objects, object)) if len(positions)]
    if not parts:
        return pd.DataFrame(index=pd.RangeIndex(len(values)))
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, axis=1)
    return frame if len(parts) == 1 or np.all(np.diff(np.concatenate([numeric, others])) > 0) else frame[index]


def empty_features(rows: int, names: list[str], types: list[str]) -> pd.DataFrame:
    """`rows` rows of all-missing features in their stored form (built from two blocks)."""
    kinds = np.asarray(types, dtype=object)
    numeric, others = np.flatnonzero(kinds == "numeric"), np.flatnonzero(kinds != "numeric")
    return block_frame(names, numeric, np.full((rows, len(numeric)), np.nan), others, np.full((rows, len(others)), None, dtype=object))


def unparsed_mask(cells: np.ndarray, parsed: np.ndarray) -> np.ndarray:
    """(N, F) bool: the text cell (`cells`, (N, F)) is filled but its parse (`parsed`, (N, F) float64)
    is NaN. Only the cells that did not parse are stripped and looked up (usually few)."""
    bad = np.isnan(parsed)
    if bad.any():
        bad[bad] = ~is_na_text(strip_cells(cells[bad]))
    return bad


def row_hashes(features: pd.DataFrame, types: list[str]) -> list[str]:
    """One BLAKE2b-128 hex digest per row of the stored feature values (NaN/None hash alike).

    All-numeric rows hash their float64 bytes exactly as before text columns existed; other columns
    add their text (None as a control character) after the numbers.
    """
    from exemplar.data.canonical import hash_bytes

    names = features.columns.tolist()  # a list: iterating a pandas text Index costs about a microsecond a name
    numeric = [name for name, kind in zip(names, types) if kind == "numeric"]
    is_numeric = set(numeric)  # a set: a list here made wide tables quadratic in their columns
    others = [name for name in names if name not in is_numeric]
    values = np.array((features[numeric] if others else features).to_numpy(dtype=np.float64), order="C")  # a copy: NaNs are rewritten below
    values[np.isnan(values)] = np.nan  # one NaN bit pattern, so equal rows hash equal
    if not others:
        return [hash_bytes(row.tobytes()) for row in values]
    cells = features[others].to_numpy(dtype=object)  # one block: text, booleans, None
    cells = np.where(pd.isna(cells), "\x00", cells)
    return [hash_bytes(row.tobytes() + "\x1f".join(map(str, texts)).encode()) for row, texts in zip(values, cells)]


def is_missing(column: pd.Series) -> np.ndarray:
    """(N,) bool: the cell is missing (None/NaN, or an infinite number)."""
    if column.dtype.kind == "f":
        return ~np.isfinite(column.to_numpy())
    return column.isna().to_numpy()


class ColumnProfile:
    """Running per-column facts over batches: missing cells (all rows) and, over training rows,
    whether a column is all-missing or constant. Memory: a few values per column, held in arrays and
    updated a block of columns at a time (one dtype group per step), never column by column."""

    def __init__(self, names: list[str]):
        self.names = list(names)
        size = len(self.names)
        self.updated = False
        self.rows_with_missing = 0
        self._missing, self._train_filled, self._train_missing = (np.zeros(size, dtype=np.int64) for _ in range(3))
        self._first = np.full(size, None, dtype=object)  # first filled training value (meaningful where _has_first)
        self._has_first, self._varies = np.zeros(size, dtype=bool), np.zeros(size, dtype=bool)

    def update(self, features: pd.DataFrame, is_train: np.ndarray) -> "ColumnProfile":
        """Add a batch: `features` (N, F) stored values, `is_train` (N,) bool."""
        if features.columns.tolist() != self.names:
            features = features[self.names]
        kinds = np.array([dtype.kind for dtype in features.dtypes], dtype="<U1")
        any_missing = np.zeros(len(features), dtype=bool)
        for positions, as_float in ((np.flatnonzero(kinds == "f"), True), (np.flatnonzero(kinds != "f"), False)):
            if len(positions):
                block = features if len(positions) == len(kinds) else features.iloc[:, positions]
                any_missing |= self._add_block(block, positions, as_float, is_train)
        self.rows_with_missing += int(any_missing.sum())
        self.updated = True
        return self

    def _add_block(self, block: pd.DataFrame, positions: np.ndarray, as_float: bool, is_train: np.ndarray) -> np.ndarray:
        """Count the columns at `positions` from `block` (N, k): floats (missing: NaN or infinite) or
        other values (missing: None/NaN). Returns (N,) bool, the rows with a missing cell here."""
        values = block.to_numpy(dtype=np.float64 if as_float else object)
        missing = ~np.isfinite(values) if as_float else pd.isna(values)
        filled = is_train[:, None] & ~missing
        self._missing[positions] += missing.sum(axis=0)
        self._train_missing[positions] += (is_train[:, None] & missing).sum(axis=0)
        self._train_filled[positions] += filled.sum(axis=0)
        new = filled.any(axis=0) & ~self._has_first[positions]
        if not len(values):
            return np.zeros(0, dtype=bool)
        firsts = values[filled.argmax(axis=0), np.arange(len(positions))]
        self._first[positions[new]] = list(firsts[new])  # a list keeps numpy scalars as they were read
        self._has_first[positions[new]] = True
        reference = self._first[positions]
        if as_float:
            reference = np.where(self._has_first[positions], reference, 0.0).astype(np.float64)
        compared = np.where(filled, values, reference[None, :]) if not as_float else values
        self._varies[positions] |= ((compared != reference[None, :]) & filled).any(axis=0)
        return missing.any(axis=1)

    @property
    def missing(self) -> dict[str, int]:
        """{column: missing cells over all rows} (empty before the first batch)."""
        return dict(zip(self.names, self._missing.tolist())) if self.updated else {}

    @property
    def first(self) -> dict[str, object]:
        """{column: its first filled training value} for the columns that have one."""
        return {self.names[j]: self._first[j] for j in np.flatnonzero(self._has_first)}

    def problems(self) -> dict[str, str]:
        """{column: "all_missing" | "constant"} for columns that carry no information in training rows.

        A column with one distinct value but some missing cells is kept: its missingness is information.
        """
        all_missing = self._train_filled == 0
        constant = ~all_missing & ~self._varies & (self._train_missing == 0)
        return {self.names[j]: "all_missing" if all_missing[j] else "constant" for j in np.flatnonzero(all_missing | constant)}

    def warnings(self) -> list[dict]:
        """One record per problem column: column, problem, detail (plain words)."""
        first = self.first
        details = {
            "all_missing": "no training row has a value; the column is left out of the model inputs",
            "constant": "every training row has the same value ({value!r}); the column is left out of the model inputs",
        }
        return [
            {"column": name, "problem": problem, "detail": details[problem].format(value=_plain(first.get(name)))}
            for name, problem in self.problems().items()
        ]


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def log_warnings(warnings: list[dict], source: str) -> None:
    """Log each column warning on the ``exemplar.data`` logger (WARNING level)."""
    for warning in warnings:
        log.warning("%s: column %r is %s: %s", source, warning["column"], warning["problem"].replace("_", "-"), warning["detail"])
