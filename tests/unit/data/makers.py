"""Tiny generated inputs of every kind (seeded), shared by the data and ingest tests."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from exemplar.data.config import DataConfig


def config(kind: str, path: Path | str | None = None, **overrides) -> DataConfig:
    return DataConfig(kind=kind, path=None if path is None else str(path), **overrides)


def tiny_images(channels: int = 1, per_class: int = 4, size: tuple[int, int] = (6, 5), seed: int = 0) -> dict:
    """Two classes ('cat', 'dog') of distinct random images; the first half of each class is train."""
    rng = np.random.default_rng(seed)
    n = 2 * per_class
    pixels = rng.integers(0, 256, size=(n, channels, *size), dtype=np.uint8)
    labels = np.array(["cat"] * per_class + ["dog"] * per_class)
    splits = np.array((["train"] * (per_class - 1) + ["test"]) * 2)
    ids = np.array([f"{s}/{c}/{i:03d}.png" for i, (s, c) in enumerate(zip(splits, labels))])
    order = np.argsort(ids)  # the order an image folder is listed in
    return {"pixels": pixels[order], "labels": labels[order], "splits": splits[order], "ids": ids[order].tolist()}


def png_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """Encode a (C, H, W) uint8 array."""
    array = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_image_folder(root: Path, data: dict) -> Path:
    """root/<split>/<class>/<index>.png, so ids (relative paths) equal data['ids']."""
    for row_id, pixels in zip(data["ids"], data["pixels"]):
        path = root / row_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(pixels))
    return root


def write_image_parquet(path: Path, data: dict) -> Path:
    frame = pd.DataFrame({"id": data["ids"], "label": data["labels"], "split": data["splits"], "image": [png_bytes(p) for p in data["pixels"]]})
    frame.to_parquet(path, index=False)
    return path


def write_image_npz(path: Path, data: dict) -> Path:
    np.savez(path, x=data["pixels"], y=data["labels"], ids=np.array(data["ids"]), split=data["splits"])
    return path


def tiny_table(rows: int = 12, features: int = 3, seed: int = 0) -> pd.DataFrame:
    """Three classes of numeric features with ids and no split column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"f{j}" for j in range(features)])
    frame.insert(0, "label", np.arange(rows) % 3)
    frame.insert(0, "id", [f"r{i:03d}" for i in range(rows)])
    return frame


def write_cifar(root: Path, classes: int = 10, per_batch: int = 6, seed: int = 0) -> Path:
    """A fake CIFAR-10 (classes=10) or CIFAR-100 (classes=100) python-version folder, pickled like the originals."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    hundred = classes == 100
    names = [f"class{k}" for k in range(classes)]
    meta = {b"fine_label_names" if hundred else b"label_names": [n.encode() for n in names]}
    (root / ("meta" if hundred else "batches.meta")).write_bytes(pickle.dumps(meta, protocol=2))
    files = ["train", "test"] if hundred else ["data_batch_1", "test_batch"]
    for name in files:
        labels = [k % 2 for k in range(per_batch)]  # classes 0 and 1 only
        batch = {b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8), (b"fine_labels" if hundred else b"labels"): labels}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root
