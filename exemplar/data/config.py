"""Data input settings (the ``data`` config group: one conf/data/<kind>.yaml per input kind)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exemplar.errors import ExemplarError

KINDS = ("digits", "parquet", "csv", "image_folder", "npz", "cifar")
HIGH_CARDINALITY = ("target", "infrequent")
IMPUTATION = ("median", "mean")


@dataclass
class EncodingConfig:
    """How table features become model inputs (``data.encoding``; applied by encoding.py)."""

    max_onehot_categories: int = 20  # one-hot columns with up to this many distinct training values
    high_cardinality: str = "target"  # above it: "target" (TargetEncoder, cross-fitted) or "infrequent"
    numeric_imputation: str = "median"  # "median" or "mean" of the training rows (after scaling)
    categorical_columns: list[str] = field(default_factory=list)  # numeric columns to treat as categories

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
    batch_rows: int = 65536  # rows per batch when streaming (memory is bounded by this, not the file size)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)  # tables: how features become model inputs

    def __post_init__(self) -> None:
        if isinstance(self.encoding, dict):
            self.encoding = EncodingConfig(**self.encoding)

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
        if self.batch_rows < 1:
            raise ExemplarError(f"data.batch_rows must be positive, got {self.batch_rows}. Fix: data.batch_rows=65536.")
        self.encoding.validate()
