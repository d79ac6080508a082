"""Reader for a CSV file, streamed with pyarrow's incremental CSV reader.

Columns: a label column, optional ``id`` and ``split`` columns, and either an image path column
(``data.image_column``, paths relative to the CSV's folder) or feature columns. Every cell is read as
text first, so one bad value never fails the whole file. Each feature column's type is decided from
the first block of text (:func:`~exemplar.data.columns.text_column_type`): numbers, true/false, ISO 8601
dates, or text (categories). Empty and NA-like cells (as pandas reads them) are missing values; a cell of a
numeric column that is not a number is missing too, and counted per column (``unparsed_cells``), as is a
cell of a datetime column that is not a date (kept as written, read as missing by the encoding). A
line with the wrong number of fields is kept as ``wrong_feature_count`` with its original text.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from exemplar.data.columns import block_frame, empty_features, parse_dates, text_blocks, text_types, unparsed_mask
from exemplar.data.config import DELIMITER_NAMES, DataConfig
from exemplar.data.parquet_input import require_path
from exemplar.data.raw import RawBatch, make_keys, row_ids
from exemplar.errors import ExemplarError


# Cells are read as text and typed here, so Arrow's own null/true/false spellings are never used; left
# at their defaults, Arrow builds look-up tries for them per column (about 7 KB a column: 0.7 GB for
# 100,000 columns) and spends twice the time.
_TEXT_ONLY = {"null_values": [], "true_values": [], "false_values": []}
ROWS_PER_BLOCK = 16  # the fewest lines in a block read for rows (see CsvReader._stream_sizes)
CHUNK_CELLS = 1 << 18  # text cells turned into Python strings at a time (about 20 MB)


class CsvReader:
    """Streams ``data.path`` (one .csv file) as :class:`RawBatch` es."""

    label_names = None
    feature_types: list[str] = []

    def __init__(self, config: DataConfig):
        self.config = config
        self.unparsed: dict[str, tuple[int, str, str]] = {}  # column -> (cells that did not parse, first such text, what was expected)
        path = require_path(Path(config.path).expanduser(), "CSV file", "data=csv data.path=/abs/path/data.csv")
        if path.is_dir() or path.stat().st_size == 0:
            raise ExemplarError(f"{path} is {'a folder' if path.is_dir() else 'an empty file (0 bytes)'}. Fix: point data.path at a CSV file with a header line.")
        self.path, self.source = path, str(path)
        self.columns = self._header()
        repeated = sorted(name for name, count in Counter(self.columns).items() if count > 1)
        if repeated:
            raise ExemplarError(f"{path}: the header names column(s) {repeated} more than once. Fix: give every column a distinct name.")
        if config.label_column not in self.columns:
            raise ExemplarError(
                f"{path} has no '{config.label_column}' column (header: {', '.join(self.columns)}). "
                + (_delimiter_hint(self.columns, config.delimiter) or "Fix: set data.label_column=<your target column>, or rename it to 'label'.")
            )
        self.modality = "image" if config.image_column in self.columns else "table"
        self.feature_names = self._feature_names() if self.modality == "table" else []
        self._kinds = np.asarray(self.feature_types, dtype=object)
        self._feature_index = pd.Index(self.feature_names)  # built once: every batch's frame reuses it

    def _block_sizes(self) -> tuple[int, int]:
        """(bytes per parsed block, blocks per batch). Arrow's streaming reader reads up to 32 blocks
        ahead in the background, so blocks are kept small (1 MB, or 64 times the longest of the first
        lines) and several are joined into one batch of about ``batch_rows * 64`` bytes of text. The
        column types are judged on the first such block."""
        batch_bytes = int(min(max(self.config.batch_rows * 64, 1 << 16), 1 << 26))
        block = min(batch_bytes, max(1 << 20, 64 * self._longest_line()))
        return block, max(1, -(-batch_bytes // block))

    def _stream_sizes(self) -> tuple[int, int]:
        """:meth:`_block_sizes` for reading the rows, with at least ``ROWS_PER_BLOCK`` lines a block:
        Arrow's cost per block grows with the columns (a few microseconds each), so blocks of a fixed
        size made a wide file's cost grow with the square of its width."""
        batch_bytes = int(min(max(self.config.batch_rows * 64, 1 << 16), 1 << 26))
        block = min(max(self._block_sizes()[0], ROWS_PER_BLOCK * self._longest_line()), 1 << 30)
        return block, max(1, -(-batch_bytes // block))

    def _longest_line(self) -> int:
        with open(self.path, "rb") as file:
            return max((len(file.readline()) for _ in range(3)), default=0)

    def _open(self, on_invalid=None, columns: list[str] | None = None, block: int | None = None) -> pacsv.CSVStreamingReader:
        """A stream of the file's cells as text in blocks of `block` bytes (default: :meth:`_block_sizes`);
        only `columns` (all when None) are converted."""
        try:
            return pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=block or self._block_sizes()[0], use_threads=False, encoding=self.config.text_encoding),
                parse_options=pacsv.ParseOptions(delimiter=self.config.delimiter, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in getattr(self, "columns", [])},
                                                     strings_can_be_null=False, include_columns=columns or [], **_TEXT_ONLY),
            )
        except (pa.ArrowInvalid, OSError) as error:
            fix = (f"Fix: the file is not {self.config.text_encoding} text: set data.text_encoding to its encoding (e.g. cp1252 or latin-1 "
                   "for older spreadsheet exports), or save it as UTF-8." if "UTF8" in str(error) or "decode" in str(error).lower()
                   else f"Fix: save it as text separated by data.delimiter ({self.config.delimiter!r}) with a header line.")
            raise ExemplarError(f"{self.path} could not be read as CSV ({error}). {fix}") from error

    def _header(self) -> list[str]:
        """The column names: split from the first line when it is plainly quoted (the common case), else
        Arrow's own parse, which also infers every column's type from the first block (seconds for a
        100,000-column file)."""
        plain = self.config.delimiter == "," and codecs.lookup(self.config.text_encoding).name == "utf-8"
        names = plain_header(self.path, self._block_sizes()[0]) if plain else None
        return names if names is not None else self._open(lambda row: "skip").schema.names

    def _feature_names(self) -> list[str]:
        c = self.config
        names = c.feature_columns or [n for n in self.columns if n not in (c.label_column, c.id_column, c.split_column)]
        present = set(self.columns)
        missing = [n for n in names if n not in present]
        if missing or not names:
            raise ExemplarError(
                f"{self.path}: feature column(s) {missing or '(none)'} not found (header: {', '.join(self.columns)}). "
                f"Fix: add feature columns or an '{c.image_column}' column of image paths, or correct data.feature_columns."
            )
        self.feature_types = self._column_types(names)
        return names

    def _key_names(self) -> list[str]:
        c = self.config
        return [name for name in (c.label_column, c.id_column, c.split_column, c.image_column) if name in self.columns]

    def _column_types(self, names: list[str]) -> list[str]:
        """Each feature column's type, judged on the first block of text (the whole file for small ones)."""
        first = next(iter(self._open(lambda row: "skip")), None)
        if first is None:
            return ["numeric"] * len(names)
        return text_types(column_text([first], _positions(first.schema.names, names)))

    def batches(self, with_data: bool) -> Iterator[RawBatch]:
        invalid: list[pacsv.InvalidRow] = []
        start, bad_rows = 0, 0

        def on_invalid(row: pacsv.InvalidRow) -> str:
            invalid.append(row)
            return "skip"

        wanted = set(self._key_names() + (self.feature_names if with_data else []))  # the keys pass converts only the keys
        columns = [c for c in self.columns if c in wanted]
        positions = _positions(columns, self.feature_names) if with_data else []
        block, per_batch = self._stream_sizes()
        for group in _grouped(self._open(on_invalid, columns, block), per_batch):
            yield self._batch(group, positions, start, with_data)
            start += sum(record_batch.num_rows for record_batch in group)
            if invalid:
                yield self._invalid_batch(invalid, bad_rows, with_data)
                bad_rows += len(invalid)
                invalid.clear()
        if invalid:
            yield self._invalid_batch(invalid, bad_rows, with_data)

    def _batch(self, group: list[pa.RecordBatch], positions: list[int], start: int, with_data: bool) -> RawBatch:
        """One batch from the record batches `group`, whose feature columns sit at `positions`; they go
        through pandas as whole blocks (cost per column: a few array operations, whatever the width)."""
        c, n = self.config, sum(record_batch.num_rows for record_batch in group)
        frame = pa.Table.from_batches([record_batch.select(self._key_names()) for record_batch in group]).to_pandas()
        ids = frame[c.id_column].tolist() if c.id_column in frame else row_ids(start, n)
        ids = [given or generated for given, generated in zip(ids, row_ids(start, n))]
        splits = frame[c.split_column] if c.split_column in frame else None
        rows = range(start, start + n)
        if self.modality == "image":
            paths = frame[c.image_column].tolist()
            images, problems, details = self._read_images(paths)
            return RawBatch(make_keys(ids, frame[c.label_column], splits, self.source, rows, problems, details, paths), images=images)
        keys = make_keys(ids, frame[c.label_column], splits, self.source, rows)
        if not with_data:
            return RawBatch(keys)
        return RawBatch(keys, features=self._features(group, positions, n))

    def _features(self, group: list[pa.RecordBatch], positions: list[int], rows: int) -> pd.DataFrame:
        """(rows, F) stored features of `group` (columns at `positions`), typed a slice of columns at a
        time so that at most ``CHUNK_CELLS`` cells are Python strings at once."""
        kinds, step = self._kinds, max(1, CHUNK_CELLS // max(rows, 1))
        parsed, stored = [], []
        for start in range(0, len(positions), step):
            part = slice(start, start + step)
            text = column_text(group, positions[part])  # (rows, k) str
            numbers, objects = text_blocks(text, list(kinds[part]))
            numeric, dated = np.flatnonzero(kinds[part] == "numeric"), np.flatnonzero(kinds[part] == "datetime")
            if len(numeric):
                self._count_unparsed(text if len(numeric) == text.shape[1] else text[:, numeric], numbers, start + numeric)
            if len(dated):
                self._count_unparsed(text[:, dated], parse_dates(text[:, dated]), start + dated, "ISO 8601 dates")
            parsed.append(numbers)
            stored.append(objects)
        numeric, others = np.flatnonzero(kinds == "numeric"), np.flatnonzero(kinds != "numeric")
        return block_frame(self._feature_index, numeric, _joined(parsed, rows, np.float64), others, _joined(stored, rows, object))

    def _count_unparsed(self, text: np.ndarray, parsed: np.ndarray, positions: np.ndarray, expected: str = "numbers") -> None:
        """Remember, per numeric (or datetime) column, how many filled cells were not `expected`
        (first example kept); `text` and `parsed` (N, k) hold the feature columns at `positions`."""
        bad = unparsed_mask(text, parsed)
        for j in np.flatnonzero(bad.any(axis=0)):
            name, column = self.feature_names[positions[j]], bad[:, j]
            count, example, _ = self.unparsed.get(name, (0, str(text[:, j][column][0]), expected))
            self.unparsed[name] = (count + int(column.sum()), example, expected)

    def _read_images(self, paths: list[str]) -> tuple[list[bytes | None], list[str], list[str]]:
        images, problems, details = [], [], []
        for text in paths:
            path = self.path.parent / text
            try:
                images.append(path.read_bytes())
                problems.append(""), details.append("")
            except OSError as error:
                images.append(None)
                problems.append("missing_image_file"), details.append(f"cannot read {path}: {error.strerror or error}")
        return images, problems, details

    def _invalid_batch(self, invalid: list, first: int, with_data: bool) -> RawBatch:
        n = len(invalid)
        ids = [f"invalid-line-{first + i:07d}" for i in range(n)]
        details = [f"{row.actual_columns} field(s) where the header has {row.expected_columns}" for row in invalid]
        keys = make_keys(ids, [None] * n, None if self.config.split_column not in self.columns else [""] * n, self.source,
                         [-1] * n, ["wrong_feature_count"] * n, details, [row.text for row in invalid])
        if self.modality == "image":
            return RawBatch(keys, images=[None] * n)
        return RawBatch(keys, features=empty_features(n, self.feature_names, self.feature_types) if with_data else None)


SEPARATORS = {char: word for word, char in DELIMITER_NAMES.items() if word.isalpha()}  # ";" -> "semicolon", ...


def _delimiter_hint(columns: list[str], delimiter: str) -> str | None:
    """A fix naming another separator when the header read as one column that another one splits
    (a semicolon export read with commas), else None."""
    if len(columns) != 1:
        return None
    for separator, name in SEPARATORS.items():
        if separator != delimiter and separator in columns[0]:
            shown = "tab" if separator == "\t" else repr(separator)
            return f"Fix: the header looks {name}-separated: set data.delimiter={shown}."
    return None


def column_text(group: list[pa.RecordBatch], positions: list[int]) -> np.ndarray:
    """(N, k) object array of the text of the string columns at `positions` of the record batches
    `group` (N rows together), in one conversion: the columns are joined into one array, column after
    column, and turned into Python strings at once (column by column through pandas, a wide file paid
    milliseconds per column)."""
    rows = sum(record_batch.num_rows for record_batch in group)
    if rows == 0 or not positions:
        return np.empty((rows, len(positions)), dtype=object)
    columns = [record_batch.columns for record_batch in group]
    chunks = [part[i] for i in positions for part in columns]
    return pa.concat_arrays(chunks).to_numpy(zero_copy_only=False).reshape(len(positions), rows).T


def _joined(blocks: list[np.ndarray], rows: int, dtype) -> np.ndarray:
    """(rows, sum of widths): `blocks` side by side (no copy for one block)."""
    if len(blocks) == 1:
        return blocks[0]
    return np.concatenate(blocks, axis=1) if blocks else np.empty((rows, 0), dtype=dtype)


def _positions(columns: list[str], names: list[str]) -> list[int]:
    """The index in `columns` of each of `names` (one dictionary, never a scan per name)."""
    index = {name: i for i, name in enumerate(columns)}
    return [index[name] for name in names]


_FIELD = r'(?:[^",\r\n]*|"(?:[^"]|"")*")'
_PLAIN_LINE = re.compile(f"{_FIELD}(?:,{_FIELD})*")


def plain_header(path: Path, limit: int) -> list[str] | None:
    """The names on the header line of the CSV at `path` (after a UTF-8 byte order mark and empty
    lines, as Arrow reads it), or None when that line is not plain: not within `limit` bytes, not UTF-8,
    or quoted in any way other than whole fields with doubled inner quotes (Arrow then decides)."""
    data = b""
    with open(path, "rb") as file:
        while len(data) < limit and (chunk := file.read(min(1 << 20, limit - len(data)))):
            data += chunk
            text = (data[3:] if data.startswith(b"\xef\xbb\xbf") else data).lstrip(b"\r\n")
            end = re.search(rb"[\r\n]", text)
            if end:
                return _split_line(text[: end.start()])
    return None


def _split_line(line: bytes) -> list[str] | None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if '"' not in text:
        return text.split(",")
    if not _PLAIN_LINE.fullmatch(text):
        return None
    try:
        return next(csv.reader([text]))
    except csv.Error:
        return None


def _grouped(record_batches: Iterator[pa.RecordBatch], size: int) -> Iterator[list[pa.RecordBatch]]:
    """Consecutive groups of `size` record batches (the last one may be smaller)."""
    group = []
    for record_batch in record_batches:
        group.append(record_batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group

