"""Reading the run's canonical table and masks back into tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from exemplar.data.canonical import Dataset, from_arrow, input_array
from exemplar.errors import ExemplarError
from exemplar.training.checkpoints import list_checkpoints
from tasks.layout import RunLayout


def read_dataset(path: Path) -> Dataset:
    return from_arrow(pq.read_table(path), source=str(path))


def read_keep(path: Path, ids: pd.Series) -> np.ndarray:
    """The ``keep`` mask aligned to `ids` (rows missing from the mask are kept)."""
    mask = pq.read_table(path).to_pandas().set_index("id")["keep"]
    return np.array(mask.reindex(ids).fillna(True).to_numpy(dtype=bool))


def tensors(dataset: Dataset) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Inputs (N, ...) float32 and labels (N,) int64 for every row of the table: images in [0, 1];
    tables encoded (standardised numbers, one-hot/target-encoded categories, missing indicators) by
    an encoding fit on the training rows (exemplar/data/encoding.py)."""
    import torch  # here: the stages that only read the table (report) do not load torch

    x = torch.from_numpy(np.ascontiguousarray(input_array(dataset)))
    y = torch.from_numpy(dataset.table["label"].to_numpy(dtype=np.int64, copy=True))
    return x, y


def split_rows(dataset: Dataset, split: str) -> np.ndarray:
    """(N,) bool mask of the rows in `split` ("train" or "test")."""
    return np.array(dataset.table["split"].to_numpy() == split, dtype=bool)


def checkpoint_files(layout: RunLayout, seed: int) -> list[Path]:
    """Complete checkpoints of one seed's training run, oldest first; raises if there are none."""
    paths = list_checkpoints(layout.checkpoints(seed))
    if not paths:
        raise ExemplarError(f"no checkpoints in {layout.checkpoints(seed)}. Fix: run the train stage first.")
    return paths
