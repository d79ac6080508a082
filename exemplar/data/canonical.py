"""The canonical dataset: one validated table every later stage reads.

Columns: ``id`` (str, unique), ``label`` (int64, contiguous 0..K-1), ``label_name`` (str),
``split`` ("train"/"test"), ``content_hash`` (hex digest of the decoded data), and the data:
``pixels`` (raw uint8 bytes of a (C, H, W) image) for images, or one column per feature for tables,
holding the values as given (float64 with NaN, text or booleans with nulls; see columns.py). The
layout (modality, image shape, feature names and types, class names, the encoding settings) travels
as :class:`DatasetInfo` in the Parquet schema metadata; the model inputs of a table are rebuilt from
it by :func:`input_array` (encoding.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from exemplar.data.columns import ARROW_TYPES, row_hashes
from exemplar.errors import ExemplarError

if TYPE_CHECKING:
    from exemplar.data.encoding import Encoded

METADATA_KEY = b"exemplar"


@dataclass(frozen=True)
class DatasetInfo:
    """How to interpret the data columns of a canonical table."""

    modality: str  # "image" or "table"
    class_names: list[str]
    image_shape: list[int] | None = None  # [C, H, W] for images
    feature_names: list[str] = field(default_factory=list)
    source: str = ""
    feature_types: list[str] = field(default_factory=list)  # per feature: numeric/categorical/boolean/datetime (empty: all numeric)
    encoding: dict = field(default_factory=dict)  # EncodingConfig fields (empty: the defaults)

    @property
    def column_types(self) -> list[str]:
        """The type of every feature column (numeric when the table predates typed columns)."""
        return list(self.feature_types) or ["numeric"] * len(self.feature_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one stored input: (C, H, W) for images, (F,) feature columns for tables (the
        encoded model input of a table is wider: see :func:`input_array`)."""
        if self.modality == "image":
            return tuple(self.image_shape)
        return (len(self.feature_names),)


@dataclass
class Dataset:
    """A canonical table plus the info needed to read its data columns."""

    table: pd.DataFrame
    info: DatasetInfo


def hash_bytes(data: bytes) -> str:
    """128-bit BLAKE2b hex digest used for content and dataset hashes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def encode_labels(raw_labels: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Map arbitrary labels to contiguous ints 0..K-1 and return (codes, class names).

    Numeric labels keep numeric order; other labels are ordered by their string form.
    """
    if pd.api.types.is_numeric_dtype(raw_labels):
        values = raw_labels.to_numpy()
        if np.all(np.mod(values, 1) == 0):
            values = values.astype(np.int64)
        uniques = np.unique(values)
        codes = np.searchsorted(uniques, values).astype(np.int64)
        return codes, [str(u) for u in uniques.tolist()]
    as_text = raw_labels.astype(str)
    uniques = sorted(as_text.unique())
    lookup = {name: code for code, name in enumerate(uniques)}
    return as_text.map(lookup).to_numpy(dtype=np.int64), uniques


def image_table(
    ids: list[str], codes: np.ndarray, class_names: list[str], splits: list[str], pixels: np.ndarray
) -> pd.DataFrame:
    """Build the canonical rows for images; `pixels` is uint8 of shape (N, C, H, W)."""
    blobs = [np.ascontiguousarray(p).tobytes() for p in pixels]
    shape_tag = "x".join(map(str, pixels.shape[1:])).encode()
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=str),
            "label": codes.astype(np.int64),
            "label_name": [class_names[c] for c in codes],
            "split": splits,
            "content_hash": [hash_bytes(shape_tag + b) for b in blobs],
            "pixels": blobs,
        }
    )


def feature_table(
    ids: list[str], codes: np.ndarray, class_names: list[str], splits: list[str], features: pd.DataFrame, types: list[str] | None = None
) -> pd.DataFrame:
    """Build the canonical rows for tabular data; `features` (N, F) holds the stored values of
    columns of `types` (all numeric float64 when None)."""
    types = types or ["numeric"] * features.shape[1]
    features = features.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=str),
            "label": codes.astype(np.int64),
            "label_name": [class_names[c] for c in codes],
            "split": splits,
            "content_hash": row_hashes(features, types),
        }
    )
    return pd.concat([frame, features], axis=1)


class DatasetHasher:
    """Order-independent dataset hash built batch by batch (memory does not grow with the rows).

    hash = (sum over rows of BLAKE2b-128("id|label|split|content_hash")) mod 2**128, as 32 hex digits:
    a multiset hash (Bellare & Micciancio, 1997, "AdHash"), so any row order gives the same value.
    """

    def __init__(self) -> None:
        self.total = 0

    def update(self, table: pd.DataFrame) -> "DatasetHasher":
        columns = [table[c].astype(str).tolist() for c in ("id", "label", "split", "content_hash")]
        self.total = (self.total + sum(_row_digest("|".join(key)) for key in zip(*columns))) % (1 << 128)
        return self

    def hexdigest(self) -> str:
        return f"{self.total:032x}"


def _row_digest(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=16).digest(), "big")


def dataset_hash(table: pd.DataFrame) -> str:
    """Order-independent hash of (id, label, split, content_hash) over all rows (see DatasetHasher)."""
    return DatasetHasher().update(table).hexdigest()


def info_json(info: DatasetInfo) -> bytes:
    """`info` as the JSON of the Parquet schema metadata (what ``json.dumps(asdict(info))`` gives,
    without deep-copying every feature name first)."""
    return json.dumps({f.name: getattr(info, f.name) for f in dataclass_fields(info)}).encode()


CANONICAL_COLUMNS = ("id", "label", "label_name", "split", "content_hash", "pixels")  # dataset.parquet's own columns


def arrow_schema(info: DatasetInfo) -> pa.Schema:
    """The canonical Parquet schema for `info`, with the info itself in the schema metadata."""
    fields = [("id", pa.string()), ("label", pa.int64()), ("label_name", pa.string()), ("split", pa.string()),
              ("content_hash", pa.string())]
    if info.modality == "image":
        fields.append(("pixels", pa.binary()))
    else:
        fields.extend((name, ARROW_TYPES[kind]) for name, kind in zip(info.feature_names, info.column_types))
    return pa.schema(fields, metadata={METADATA_KEY: info_json(info)})


def to_arrow(dataset: Dataset) -> pa.Table:
    """Convert to a pyarrow Table with :class:`DatasetInfo` in the schema metadata (every column kept)."""
    table = pa.Table.from_pandas(dataset.table, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = info_json(dataset.info)
    return table.replace_schema_metadata(metadata)


_NUMPY_TYPES = {pa.float64(): np.float64, pa.int64(): np.int64}


def type_groups(schema: pa.Schema) -> list[tuple[pa.DataType, list[int]]]:
    """The positions of `schema`'s fields, grouped by Arrow type (first appearance order)."""
    groups: dict[pa.DataType, list[int]] = {}
    for i, kind in enumerate(schema.types):
        groups.setdefault(kind, []).append(i)
    return list(groups.items())


def rows_to_arrow(frame: pd.DataFrame, schema: pa.Schema, groups: list[tuple[pa.DataType, list[int]]] | None = None) -> pa.Table:
    """``pa.Table.from_pandas(frame, schema=schema, preserve_index=False)`` (same values, same nulls:
    NaN and None become null) without its per-column pandas work: the columns of each Arrow type are
    taken from `frame` as one (N, k) block, converted as one array and sliced per column (zero-copy),
    so a table of 100,000 feature columns converts in a few array operations. `groups`:
    :func:`type_groups` of `schema`, when the caller converts many frames."""
    names = schema.names
    if frame.columns.tolist() != names:
        frame = frame[names]
    n, arrays = len(frame), [None] * len(names)
    for kind, positions in groups or type_groups(schema):
        block = frame.iloc[:, positions].to_numpy(dtype=_NUMPY_TYPES.get(kind, object))  # (N, k)
        flat = pa.array(block.T.ravel(), type=kind, from_pandas=True)  # column after column
        for j, i in enumerate(positions):
            arrays[i] = flat.slice(j * n, n)
    return pa.Table.from_arrays(arrays, schema=schema)


def from_arrow(table: pa.Table, source: str = "dataset") -> Dataset:
    """Read back a table written by :func:`to_arrow`; raises if it is not canonical."""
    metadata = table.schema.metadata or {}
    if METADATA_KEY not in metadata:
        raise ExemplarError(
            f"{source} is not a canonical exemplar table (no '{METADATA_KEY.decode()}' schema metadata). "
            "Fix: produce it with the ingest stage (python -m flows.ingest) rather than by hand."
        )
    info = DatasetInfo(**json.loads(metadata[METADATA_KEY]))
    return Dataset(table=table.to_pandas(), info=info)


def pixel_array(dataset: Dataset) -> np.ndarray:
    """Decode the ``pixels`` column into a uint8 array of shape (N, C, H, W)."""
    shape = tuple(dataset.info.image_shape)
    flat = b"".join(dataset.table["pixels"].tolist())
    return np.frombuffer(flat, dtype=np.uint8).reshape((len(dataset.table), *shape))


def input_array(dataset: Dataset) -> np.ndarray:
    """Model inputs as float32: images in [0, 1] with shape (N, C, H, W); tables (N, D), the encoding
    of their feature columns fit on the training rows (see :func:`encode_table`)."""
    if dataset.info.modality == "image":
        return pixel_array(dataset).astype(np.float32) / 255.0
    return encode_table(dataset).x


def encode_table(dataset: Dataset, fit_rows: np.ndarray | None = None) -> "Encoded":
    """The table's features encoded by :func:`exemplar.data.encoding.encode_features` with the settings
    recorded at ingest, fit on `fit_rows` ((N,) bool; default: the rows with split "train")."""
    from exemplar.data.encoding import encode_features  # scikit-learn loads only when a table is encoded

    features, types, fit_rows, config = _encoding_inputs(dataset, fit_rows)
    return encode_features(features, types, dataset.table["label"].to_numpy(dtype=np.int64), fit_rows, config)


def native_table(dataset: Dataset, fit_rows: np.ndarray | None = None) -> pd.DataFrame:
    """The table's features for learners with native gaps and categories (numbers with NaN, pandas
    categories), by :func:`exemplar.data.encoding.native_frame`; `fit_rows` as in :func:`encode_table`."""
    from exemplar.data.encoding import native_frame

    return native_frame(*_encoding_inputs(dataset, fit_rows))


def _encoding_inputs(dataset: Dataset, fit_rows: np.ndarray | None):
    from exemplar.data.config import EncodingConfig

    info, table = dataset.info, dataset.table
    if fit_rows is None:
        fit_rows = table["split"].to_numpy() == "train"
    return table[info.feature_names], info.column_types, np.asarray(fit_rows, dtype=bool), EncodingConfig(**info.encoding)
