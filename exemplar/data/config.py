"""Data input settings (the ``data`` config group: one conf/data/<kind>.yaml per input kind)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from exemplar.errors import ExemplarError

KINDS = ("digits", "parquet", "csv", "image_folder", "npz", "cifar")
HIGH_CARDINALITY = ("target", "infrequent")
IMPUTATION = ("median", "mean")
# data.delimiter spelled as a word, or as the two characters a command line passes for a tab
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}


@dataclass
class EncodingConfig:
    """How table features become model inputs (``data.encoding``; applied by encoding.py)."""

    max_onehot_categories: int = 20  # one-hot columns with up to this many distinct training values
    high_cardinality: str = "target"  # above it: "target" (TargetEncoder, cross-fitted) or "infrequent"
    numeric_imputation: str = "median"  # "median" or "mean" of the training rows (after scaling)
    categorical_columns: list[str] = field(default_factory=list)  # numeric (or date) columns to treat as categories

    def validate(self) -> None:
        if self.max_onehot_categories < 2:
            raise ExemplarError(f"data.encoding.max_onehot_categories must be at least 2, got {self.max_onehot_categories}. Fix: e.g. 20.")
        if self.high_cardinality not in HIGH_CARDINALITY:
            raise ExemplarError(f"data.encoding.high_cardinality must be one of {HIGH_CARDINALITY}, got '{self.high_cardinality}'.")
        if self.numeric_imputation not in IMPUTATION:
            raise ExemplarError(f"data.encoding.numeric_imputation must be one of {IMPUTATION}, got '{self.numeric_imputation}'.")


@dataclass
class DataConfig:
    kind: str = "digits"
    path: str | None = None  # file or folder to read (every kind but digits)
    test_fraction: float = 0.2  # used when the input gives no split (stratified by label)
    split_seed: int = 0
    image_size: list[int] | None = None  # [height, width]; null: the most common size in the data
    channels: int | None = None  # 1 (grayscale) or 3 (RGB); null: 1 if every image is grayscale, else 3
    limit: int | None = None  # read only the first N rows of the input (quick runs)
    label_column: str = "label"  # parquet/csv: the class column
    id_column: str = "id"  # parquet/csv: the row id column (row numbers when absent)
    split_column: str = "split"  # parquet/csv: optional "train"/"test" column
    image_column: str = "image"  # parquet: encoded image bytes; csv: image file paths (relative to the csv)
    feature_columns: list[str] | None = None  # parquet/csv tables: null means every other column
    delimiter: str = ","  # csv: the field separator (";" for many spreadsheet exports, "\t" for tab-separated text)
    text_encoding: str = "utf-8"  # csv: the file's character encoding (e.g. "cp1252" or "latin-1" for older exports)
    batch_rows: int = 65536  # rows per batch when streaming (memory is bounded by this, not the file size)
    max_image_pixels: int = 50_000_000  # larger images are quarantined (image_too_large) from their header, never decoded
    encoding: EncodingConfig = field(default_factory=EncodingConfig)  # tables: how features become model inputs

    def __post_init__(self) -> None:
        if isinstance(self.encoding, dict):
            self.encoding = EncodingConfig(**self.encoding)
        self.delimiter = DELIMITER_NAMES.get(self.delimiter, self.delimiter)

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ExemplarError(f"data.kind must be one of {KINDS}, got '{self.kind}'. Fix: choose data=<one of them>.")
        if self.kind != "digits" and not self.path:
            raise ExemplarError(f"data={self.kind} needs data.path. Fix: add data.path=/path/to/your/data.")
        if not 0.0 < self.test_fraction < 1.0:
            raise ExemplarError(f"data.test_fraction must be in (0, 1), got {self.test_fraction}. Fix: e.g. data.test_fraction=0.2.")
        if self.channels not in (None, 1, 3):
            raise ExemplarError(f"data.channels must be null, 1 or 3, got {self.channels}. Fix: data.channels=3 for RGB.")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ExemplarError(f"data.image_size must be [height, width] of positive ints, got {self.image_size}. Fix: data.image_size=[32,32].")
        if self.limit is not None and self.limit < 1:
            raise ExemplarError(f"data.limit must be null or a positive number of rows, got {self.limit}.")
        if self.split_seed < 0:
            raise ExemplarError(f"data.split_seed must be >= 0, got {self.split_seed}. Fix: e.g. data.split_seed=0.")
        if self.image_size is not None and max(self.image_size) > 8192:
            raise ExemplarError(f"data.image_size must be at most 8192 pixels a side, got {self.image_size}. Fix: data.image_size=[32,32].")
        if not 1 <= self.max_image_pixels <= 1_000_000_000:
            raise ExemplarError(f"data.max_image_pixels must be in 1..1000000000, got {self.max_image_pixels}. Fix: e.g. data.max_image_pixels=50000000.")
        if self.batch_rows < 1:
            raise ExemplarError(f"data.batch_rows must be positive, got {self.batch_rows}. Fix: data.batch_rows=65536.")
        if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
            raise ExemplarError(f"data.delimiter must be one character other than a quote or a line break, got {self.delimiter!r}. "
                                "Fix: e.g. data.delimiter=';' (or data.delimiter=tab).")
        try:
            codecs.lookup(self.text_encoding)
        except LookupError:
            raise ExemplarError(f"data.text_encoding {self.text_encoding!r} is not an encoding Python knows. "
                                "Fix: e.g. data.text_encoding=utf-8, cp1252 or latin-1.") from None
        self.encoding.validate()
