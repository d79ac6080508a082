"""Reader for a user's Parquet file, or a folder of Parquet files, streamed in record batches.

Contract: a label column (``data.label_column``, default ``label``), optional ``id`` (row numbers
``row-0000000``... when absent) and ``split`` ("train"/"test") columns, and either an image column
(``data.image_column``, default ``image``: PNG/JPEG/... bytes, or a struct with a ``bytes`` field as
Hugging Face ``datasets`` writes it) or feature columns (``data.feature_columns``, default every other
column): numbers, text (string or dictionary columns) or booleans, nulls allowed. Every file of a
folder must have the same schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exemplar.data.columns import PARQUET_NA_TEXT, arrow_feature_type, typed_features
from exemplar.data.config import DataConfig
from exemplar.data.raw import RawBatch, make_keys, row_ids
from exemplar.errors import ExemplarError


def require_path(path: Path, what: str, example: str) -> Path:
    """`path` if it exists, else a clear error (shared by every reader)."""
    if not path.exists():
        raise ExemplarError(
            f"data.path '{path}' does not exist (looked in {path.resolve().parent}). "
            f"Fix: pass an existing {what}, e.g. {example}."
        )
    return path


def _is_image_type(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return any(kind.field(i).name == "bytes" for i in range(kind.num_fields))
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


class ParquetReader:
    """Streams ``data.path`` (a .parquet file or a folder of them) as :class:`RawBatch` es."""

    label_names = None
    feature_types: list[str] = []

    def __init__(self, config: DataConfig):
        self.config = config
        path = require_path(Path(config.path).expanduser(), "Parquet file or folder", "data=parquet data.path=/abs/path/data.parquet")
        self.source = str(path)
        self.files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
        if not self.files:
            raise ExemplarError(f"{path} holds no *.parquet files. Fix: point data.path at a Parquet file or a folder of them.")
        self.schema = self._common_schema()
        self.row_count = sum(pq.ParquetFile(path).metadata.num_rows for path in self.files)
        self.modality = "image" if config.image_column in self.schema.names else "table"
        self.feature_names = self._feature_names() if self.modality == "table" else []
        self._check_types()

    def _common_schema(self) -> pa.Schema:
        first = _read_schema(self.files[0])
        for other in self.files[1:]:
            schema = _read_schema(other)
            if not schema.equals(first, check_metadata=False):
                raise ExemplarError(
                    f"{other} has a different schema from {self.files[0]} ({_describe(schema)} vs {_describe(first)}). "
                    "Fix: give every file of the folder the same columns and types, or ingest them separately."
                )
        if self.config.label_column not in first.names:
            raise ExemplarError(
                f"{self.files[0]} has no '{self.config.label_column}' column (columns: {', '.join(first.names)}). "
                "Fix: set data.label_column=<your target column>, or rename it to 'label'."
            )
        return first

    def _reserved(self) -> set[str]:
        c = self.config
        return {c.label_column, c.id_column, c.split_column, c.image_column}

    def _feature_names(self) -> list[str]:
        reserved, fields = self._reserved(), {field.name: field for field in self.schema}  # sets/dicts: wide tables stay linear
        names = self.config.feature_columns or [n for n in self.schema.names if n not in reserved]
        missing = [n for n in names if n not in fields]
        if missing or not names:
            raise ExemplarError(
                f"{self.files[0]}: feature column(s) {missing or '(none)'} not found (columns: {', '.join(self.schema.names)}). "
                f"Fix: add an '{self.config.image_column}' column of image bytes or feature columns, or correct data.feature_columns."
            )
        self.feature_types = [arrow_feature_type(fields[n].type) for n in names]
        unusable = [n for n, kind in zip(names, self.feature_types) if kind is None]
        if unusable:
            raise ExemplarError(
                f"{self.files[0]}: feature column(s) {', '.join(unusable)} are neither numbers, text, booleans nor dates "
                f"({', '.join(str(self.schema.field(n).type) for n in unusable)}). "
                "Fix: convert them (e.g. durations to numbers, lists to separate columns), or leave them out with data.feature_columns=[a,b,...]."
            )
        return names

    def _check_types(self) -> None:
        label_type = self.schema.field(self.config.label_column).type
        if pa.types.is_nested(label_type) or pa.types.is_binary(label_type):
            raise ExemplarError(
                f"{self.files[0]}: column '{self.config.label_column}' has type {label_type}; a label must be a number or text. "
                "Fix: store one class label per row."
            )
        if self.modality == "image" and not _is_image_type(self.schema.field(self.config.image_column).type):
            raise ExemplarError(
                f"{self.files[0]}: column '{self.config.image_column}' has type {self.schema.field(self.config.image_column).type}, "
                "not image bytes. Fix: store encoded PNG/JPEG bytes (or a struct with a 'bytes' field), or rename the column."
            )

    def batches(self, with_data: bool) -> Iterator[RawBatch]:
        c = self.config
        data = [c.image_column] if self.modality == "image" else (self.feature_names if with_data else [])
        columns = [n for n in (c.id_column, c.label_column, c.split_column) if n in self.schema.names] + data
        start = 0
        for path in self.files:
            file_row = 0
            # buffered reads instead of pre-buffering whole row groups: memory stays flat for files of one huge row group
            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            for record_batch in parquet.iter_batches(batch_size=c.batch_rows, columns=columns):
                yield self._batch(record_batch, str(path), start, file_row, with_data)
                start += record_batch.num_rows
                file_row += record_batch.num_rows

    def _batch(self, record_batch: pa.RecordBatch, path: str, start: int, file_row: int, with_data: bool) -> RawBatch:
        c, n = self.config, record_batch.num_rows
        table = pa.Table.from_batches([record_batch])
        ids = row_ids(start, n)
        if c.id_column in table.column_names:
            given = table.column(c.id_column).to_pylist()
            ids = [generated if value is None else str(value) for value, generated in zip(given, ids)]
        labels = table.column(c.label_column).to_pandas()
        splits = table.column(c.split_column).to_pandas().fillna("") if c.split_column in table.column_names else None
        keys = make_keys(ids, labels, splits, path, range(file_row, file_row + n))
        if self.modality == "image":
            return RawBatch(keys, images=_image_bytes(table.column(c.image_column)))
        if not with_data:
            return RawBatch(keys)
        frame = table.select(self.feature_names).to_pandas()
        return RawBatch(keys, features=typed_features(frame, self.feature_names, self.feature_types, PARQUET_NA_TEXT))


def _image_bytes(column: pa.ChunkedArray) -> list[bytes | None]:
    if pa.types.is_struct(column.type):
        column = pa.chunked_array([chunk.field("bytes") for chunk in column.chunks], type=column.type.field("bytes").type)
    return column.to_pylist()


def _read_schema(path: Path) -> pa.Schema:
    if path.stat().st_size == 0:
        raise ExemplarError(f"{path} is an empty file (0 bytes). Fix: re-export it, or remove it from the folder.")
    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ExemplarError(
            f"{path} could not be read as Parquet ({error}). Fix: point data.path at a Parquet file (or a folder of them) "
            "written by pandas/pyarrow/datasets, or choose another data= option (csv, npz, image_folder, cifar)."
        ) from error


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)
