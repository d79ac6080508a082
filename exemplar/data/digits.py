"""The embedded default data set: scikit-learn's bundled 8x8 handwritten digits (1,797 images)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from exemplar.data.canonical import Dataset, DatasetInfo, encode_labels, image_table
from exemplar.data.split import stratified_split


def load_digits_dataset(test_fraction: float = 0.2, split_seed: int = 0, limit: int | None = None) -> Dataset:
    """Load digits as a canonical image dataset of shape (N, 1, 8, 8), pixels rescaled 0..16 -> 0..255.

    `limit` keeps the first rows only (for quick experiments and tests).
    """
    bunch = load_digits()
    images = bunch.images if limit is None else bunch.images[:limit]
    targets = bunch.target if limit is None else bunch.target[:limit]
    pixels = np.rint(images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    codes, class_names = encode_labels(pd.Series(targets))
    ids = [f"digits-{i:05d}" for i in range(len(codes))]
    splits = stratified_split(codes, test_fraction, split_seed)
    table = image_table(ids, codes, class_names, splits, pixels)
    info = DatasetInfo(modality="image", class_names=class_names, image_shape=[1, 8, 8], source="sklearn.load_digits")
    return Dataset(table=table, info=info)
