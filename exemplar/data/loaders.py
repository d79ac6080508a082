"""Dispatch from the data config to a reader, and in-memory ingestion for small inputs and tests.

The ingest task streams (see ingest.py); :func:`load_dataset` gathers the same batches into one
:class:`Dataset` in memory, and :func:`ingest_in_memory` also returns the quarantine and summary.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pyarrow as pa

from exemplar.data.array_input import cifar_reader, digits_reader, npz_reader
from exemplar.data.canonical import CANONICAL_COLUMNS, Dataset, from_arrow
from exemplar.data.config import KINDS, DataConfig
from exemplar.data.csv_input import CsvReader
from exemplar.data.folder_input import ImageFolderReader
from exemplar.data.ingest import IngestStream
from exemplar.data.parquet_input import ParquetReader
from exemplar.data.raw import Reader
from exemplar.errors import ExemplarError

__all__ = ["KINDS", "DataConfig", "READERS", "open_reader", "open_stream", "load_dataset", "ingest_in_memory"]

READERS: dict[str, Callable[[DataConfig], Reader]] = {
    "digits": digits_reader,
    "parquet": ParquetReader,
    "csv": CsvReader,
    "image_folder": ImageFolderReader,
    "npz": npz_reader,
    "cifar": cifar_reader,
}


def open_reader(config: DataConfig) -> Reader:
    """The reader for ``config.kind`` (validates the config and the input's layout first)."""
    config.validate()
    reader = READERS[config.kind](config)
    check_feature_names(getattr(reader, "feature_names", []), reader.source)
    return reader


def check_feature_names(names: list[str], source: str) -> None:
    """Raise when a feature column has the name of one of ``dataset.parquet``'s own columns (it would
    overwrite or shadow it), with the fix (for ``label_name``, also that it may hold the answer)."""
    clashing = [name for name in names if name in CANONICAL_COLUMNS]
    if not clashing:
        return
    answer = (" A 'label_name' column that names the classes of the label would also hand the model the answer: leave it out."
              if "label_name" in clashing else "")
    raise ExemplarError(
        f"{source}: feature column(s) {', '.join(map(repr, clashing))} have the names of exemplar's own columns in dataset.parquet "
        f"({', '.join(CANONICAL_COLUMNS)}).{answer} Fix: rename them, or leave them out with data.feature_columns=[a,b,...]."
    )


def open_stream(config: DataConfig) -> IngestStream:
    """Validate the config and input layout, run pass 1, and return the stream of canonical batches."""
    return IngestStream(open_reader(config), config)


def ingest_in_memory(config: DataConfig) -> tuple[Dataset, pd.DataFrame, dict]:
    """(canonical dataset, quarantine table, summary) for `config`, all held in memory."""
    stream = open_stream(config)
    tables = list(stream.batches())
    table = pa.concat_tables(tables) if tables else stream.schema.empty_table()
    return from_arrow(table.replace_schema_metadata(stream.schema.metadata), stream.reader.source), stream.quarantine(), stream.summary()


def load_dataset(config: DataConfig) -> Dataset:
    """Read and validate the configured input into the canonical table (quarantined rows left out)."""
    return ingest_in_memory(config)[0]
