"""Dispatch from the data config to a loader; every loader returns a canonical :class:`Dataset`."""

from __future__ import annotations

from dataclasses import dataclass

from exemplar.data.canonical import Dataset
from exemplar.data.digits import load_digits_dataset
from exemplar.data.parquet_input import read_parquet_dataset
from exemplar.errors import ExemplarError

KINDS = ("digits", "parquet")


@dataclass
class DataConfig:
    kind: str = "digits"
    path: str | None = None
    test_fraction: float = 0.2
    split_seed: int = 0
    image_size: list[int] | None = None  # [H, W]; default: the most common size in the data
    limit: int | None = None  # digits only: keep the first `limit` rows (quick runs)

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ExemplarError(f"data.kind must be one of {KINDS}, got '{self.kind}'. Fix: data=digits or data=parquet.")
        if self.kind == "parquet" and not self.path:
            raise ExemplarError("data=parquet needs data.path. Fix: add data.path=/path/to/data.parquet.")


def load_dataset(config: DataConfig) -> Dataset:
    """Read and validate the configured input into the canonical table."""
    config.validate()
    if config.kind == "digits":
        return load_digits_dataset(config.test_fraction, config.split_seed, config.limit)
    return read_parquet_dataset(config.path, config.test_fraction, config.split_seed, config.image_size)
