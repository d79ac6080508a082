"""Readers of inputs that are already arrays: NumPy ``.npz``, the CIFAR python-version folder and
the embedded digits.

``.npz``: ``x`` (N, F) features, or images (N, H, W), (N, C, H, W) or (N, H, W, C) uint8 with C in
{1, 3, 4}; ``y`` (N,) labels; optional ``ids`` (N,), ``split`` (N,) "train"/"test",
``label_names`` (K,) when ``y`` holds integer indexes, and ``feature_names`` (F,). Loaded with
``allow_pickle=False``, so object arrays are refused rather than unpickled.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from exemplar.data.cifar import batch_images, load_batch, text_list
from exemplar.data.config import DataConfig
from exemplar.data.parquet_input import require_path
from exemplar.data.raw import RawBatch, make_keys, row_ids
from exemplar.errors import ExemplarError


def image_layout(x: np.ndarray, source: str) -> np.ndarray:
    """Images as (N, C, H, W): (N, H, W) gains C=1; channels-last is transposed."""
    if x.dtype != np.uint8:
        raise ExemplarError(f"{source}: image array 'x' has dtype {x.dtype}; images must be uint8 0..255. Fix: np.clip(x * 255, 0, 255).astype(np.uint8).")
    if x.ndim == 3:
        return x[:, None]
    if x.shape[1] in (1, 3, 4):
        return x
    if x.shape[-1] in (1, 3, 4):
        return x.transpose(0, 3, 1, 2)
    raise ExemplarError(f"{source}: cannot tell the channel axis of images of shape {x.shape}. Fix: save x as (N, C, H, W) with C in 1, 3, 4.")


class ArrayReader:
    """Rows of in-memory arrays, yielded in slices of ``batch_rows`` (shared by npz, cifar, digits)."""

    def __init__(self, source: str, x: np.ndarray, y: np.ndarray, ids: list[str], splits, files, rows, batch_rows: int,
                 label_names: list[str] | None = None, feature_names: list[str] | None = None):
        self.source, self.label_names, self.batch_rows = source, label_names, batch_rows
        self.modality = "table" if x.ndim == 2 else "image"
        self.x = x if self.modality == "table" else image_layout(x, source)
        self.feature_names = list(feature_names or [f"x{j}" for j in range(x.shape[1])]) if self.modality == "table" else []
        self.y, self.ids, self.splits, self.files, self.rows = y, ids, splits, files, rows

    def batches(self, with_data: bool) -> Iterator[RawBatch]:
        import pandas as pd

        for start in range(0, len(self.y), self.batch_rows):
            part = slice(start, start + self.batch_rows)
            splits = None if self.splits is None else ["" if s is None else s for s in self.splits[part]]
            files = self.files[part] if isinstance(self.files, list) else self.files
            keys = make_keys(self.ids[part], list(self.y[part]), splits, files, self.rows[part])
            if self.modality == "image":
                yield RawBatch(keys, arrays=self.x[part])
            else:
                yield RawBatch(keys, features=pd.DataFrame(self.x[part].astype(np.float64), columns=self.feature_names))


def npz_reader(config: DataConfig) -> ArrayReader:
    path = require_path(Path(config.path).expanduser(), ".npz file", "data=npz data.path=/abs/path/data.npz")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ExemplarError(
            f"{path} could not be read as .npz without unpickling ({error}). "
            "Fix: save plain numeric/text arrays with np.savez(path, x=..., y=...) (no dtype=object)."
        ) from error
    for key in ("x", "y"):
        if key not in arrays:
            raise ExemplarError(f"{path} has no '{key}' array (found: {', '.join(arrays) or 'none'}). Fix: np.savez(path, x=inputs, y=labels).")
    x, y = arrays["x"], arrays["y"].reshape(-1)
    n = len(x)
    for key in ("y", "ids", "split"):
        if key in arrays and len(arrays[key].reshape(-1)) != n:
            raise ExemplarError(f"{path}: '{key}' has {len(arrays[key].reshape(-1))} entries but x has {n} rows. Fix: give one per row of x.")
    if x.ndim not in (2, 3, 4) or n == 0:
        raise ExemplarError(f"{path}: x has shape {x.shape}; expected (N, F) features or (N, [C,] H, W[, C]) images with N > 0.")
    ids = [str(i) for i in arrays["ids"]] if "ids" in arrays else row_ids(0, n)
    splits = [str(s) for s in arrays["split"]] if "split" in arrays else None
    names = text_list(arrays["label_names"]) if "label_names" in arrays else None
    features = text_list(arrays["feature_names"]) if "feature_names" in arrays else None
    return ArrayReader(str(path), x, y, ids, splits, str(path), np.arange(n), config.batch_rows, names, features)


CIFAR_LAYOUTS = {
    "cifar-10": ("batches.meta", "label_names", "labels", ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"], ["test_batch"]),
    "cifar-100": ("meta", "fine_label_names", "fine_labels", ["train"], ["test"]),
}


def cifar_reader(config: DataConfig) -> ArrayReader:
    """The CIFAR-10 or CIFAR-100 python-version folder (fine labels for CIFAR-100), read safely."""
    root = require_path(Path(config.path).expanduser(), "CIFAR python-version folder", "data=cifar data.path=/abs/path/cifar-10-batches-py")
    layout = next((v for v in CIFAR_LAYOUTS.values() if (root / v[0]).is_file()), None)
    if layout is None:
        raise ExemplarError(
            f"{root} is not a CIFAR python-version folder (no batches.meta or meta file). "
            "Fix: extract cifar-10-python.tar.gz or cifar-100-python.tar.gz and point data.path at the folder inside."
        )
    meta_name, names_key, labels_key, train_files, test_files = layout
    label_names = text_list(load_batch(root / meta_name)[names_key])
    parts = [_cifar_part(root / name, labels_key, split) for name in train_files + test_files
             for split in ["train" if name in train_files else "test"] if (root / name).is_file()]
    if not parts:
        raise ExemplarError(f"{root} has a meta file but no batch files ({', '.join(train_files + test_files)}). Fix: extract the whole archive.")
    x = np.concatenate([p[0] for p in parts])
    return ArrayReader(str(root), x, np.concatenate([p[1] for p in parts]), sum((p[2] for p in parts), []),
                       sum((p[3] for p in parts), []), sum((p[4] for p in parts), []), np.concatenate([p[5] for p in parts]),
                       config.batch_rows, label_names)


def _cifar_part(path: Path, labels_key: str, split: str):
    batch = load_batch(path)
    images = batch_images(batch, path)
    labels = np.asarray(batch.get(labels_key, []), dtype=np.int64)
    if len(labels) != len(images):
        raise ExemplarError(f"{path}: {len(labels)} '{labels_key}' for {len(images)} images. Fix: use the original CIFAR files.")
    n = len(images)
    return images, labels, [f"{path.name}:{i:05d}" for i in range(n)], [split] * n, [str(path)] * n, np.arange(n)


def digits_reader(config: DataConfig) -> ArrayReader:
    """scikit-learn's bundled 8x8 digits, pixels rescaled 0..16 -> 0..255, ids ``digits-00000``..."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    n = len(pixels)
    ids = [f"digits-{i:05d}" for i in range(n)]
    return ArrayReader("sklearn.load_digits", pixels, bunch.target, ids, None, "sklearn.load_digits", np.arange(n), config.batch_rows)
