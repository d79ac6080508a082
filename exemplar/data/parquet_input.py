"""Reading a user's Parquet file into the canonical table.

Contract: columns ``id`` (optional; row numbers are used when absent), ``label``, optional ``split``
("train"/"test"), and either ``image`` (PNG/JPEG bytes, or a struct with a ``bytes`` field as
Hugging Face ``datasets`` writes it) or numeric feature columns.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from exemplar.data.canonical import Dataset, DatasetInfo, SPLITS, encode_labels, feature_table, image_table
from exemplar.data.images import ImageDecodeError, decode_image, is_grayscale, to_array
from exemplar.data.split import stratified_split
from exemplar.errors import ExemplarError, describe_ids

RESERVED = {"id", "label", "split", "image"}


def read_parquet_dataset(
    path: str | Path,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    image_size: list[int] | None = None,
) -> Dataset:
    """Read and validate a Parquet file (or a directory of them) into a canonical Dataset."""
    path = Path(path)
    table = _read_table(path)
    frame = table.to_pandas()
    _require_label(frame, path)
    ids = _ids(frame, path)
    _reject_missing_labels(frame, ids, path)
    codes, class_names = encode_labels(frame["label"])
    splits = _splits(frame, ids, codes, path, test_fraction, split_seed)
    if "image" in frame.columns:
        pixels = _decode_images(frame["image"], ids, path, image_size)
        rows = image_table(ids, codes, class_names, splits, pixels)
        info = DatasetInfo("image", class_names, image_shape=list(pixels.shape[1:]), source=str(path))
    else:
        features = _features(frame, ids, path)
        rows = feature_table(ids, codes, class_names, splits, features)
        info = DatasetInfo("table", class_names, feature_names=list(features.columns), source=str(path))
    return Dataset(table=rows, info=info)


def _read_table(path: Path) -> pa.Table:
    if not path.exists():
        raise ExemplarError(
            f"data.path '{path}' does not exist (looked in {path.resolve().parent}). "
            "Fix: pass an existing Parquet file or folder, e.g. data=parquet data.path=/abs/path/data.parquet."
        )
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ExemplarError(
            f"data.path '{path}' could not be read as Parquet ({error}). Fix: point data.path at a Parquet "
            "file (or a folder of them) written by pandas/pyarrow/datasets, or choose another data= option."
        ) from error


def _require_label(frame: pd.DataFrame, path: Path) -> None:
    if "label" not in frame.columns:
        raise ExemplarError(
            f"{path} has no 'label' column (columns found: {', '.join(map(str, frame.columns))}). "
            "Fix: rename your target column to 'label' (e.g. df.rename(columns={'target': 'label'}))."
        )


def _ids(frame: pd.DataFrame, path: Path) -> list[str]:
    if "id" not in frame.columns:
        return [f"row-{i:07d}" for i in range(len(frame))]
    ids = frame["id"].astype(str).tolist()
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        raise ExemplarError(
            f"{path}: column 'id' is not unique; repeated ids: {describe_ids(repeated)}. "
            "Fix: give every row its own id, or drop the 'id' column to number rows automatically."
        )
    return ids


def _reject_missing_labels(frame: pd.DataFrame, ids: list[str], path: Path) -> None:
    missing = frame["label"].isna().to_numpy()
    if missing.any():
        bad = [ids[i] for i in np.flatnonzero(missing)]
        raise ExemplarError(
            f"{path}: {len(bad)} row(s) have no label: ids {describe_ids(bad)}. "
            "Fix: label them or remove them from the file."
        )


def _splits(
    frame: pd.DataFrame, ids: list[str], codes: np.ndarray, path: Path, test_fraction: float, seed: int
) -> list[str]:
    if "split" not in frame.columns:
        return stratified_split(codes, test_fraction, seed)
    splits = frame["split"].astype(str).str.lower().tolist()
    bad = [ids[i] for i, s in enumerate(splits) if s not in SPLITS]
    if bad:
        raise ExemplarError(
            f"{path}: column 'split' must hold 'train' or 'test'; rows {describe_ids(bad)} do not. "
            "Fix: correct those values, or drop the 'split' column for an automatic stratified split."
        )
    if "train" not in splits:
        raise ExemplarError(f"{path}: no row has split 'train'. Fix: mark training rows with split='train'.")
    return splits


def _image_bytes(value: object) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def _decode_images(column: pd.Series, ids: list[str], path: Path, image_size: list[int] | None) -> np.ndarray:
    images, bad = [], []
    for row_id, value in zip(ids, column):
        try:
            data = _image_bytes(value)
            if data is None:
                raise ImageDecodeError("not bytes")
            images.append(decode_image(data))
        except ImageDecodeError:
            bad.append(row_id)
    if bad:
        raise ExemplarError(
            f"{path}: {len(bad)} image(s) could not be decoded: ids {describe_ids(bad)}. "
            "Fix: re-encode them as PNG/JPEG bytes (or a struct with a 'bytes' field), or remove those rows."
        )
    channels = 1 if all(is_grayscale(im) for im in images) else 3
    if image_size:
        size = (int(image_size[0]), int(image_size[1]))
    else:
        size = Counter((im.height, im.width) for im in images).most_common(1)[0][0]
    return np.stack([to_array(im, channels, size) for im in images])


def _features(frame: pd.DataFrame, ids: list[str], path: Path) -> pd.DataFrame:
    features = frame[[c for c in frame.columns if c not in RESERVED]]
    if features.shape[1] == 0:
        raise ExemplarError(
            f"{path}: no 'image' column and no feature columns. "
            "Fix: add an 'image' column of PNG/JPEG bytes or numeric feature columns."
        )
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise ExemplarError(
            f"{path}: feature column(s) {', '.join(non_numeric)} are not numeric. "
            "Fix: encode them as numbers or drop them before ingesting."
        )
    values = features.to_numpy(dtype=np.float64)
    bad = [ids[i] for i in np.flatnonzero(~np.isfinite(values).all(axis=1))]
    if bad:
        raise ExemplarError(
            f"{path}: {len(bad)} row(s) have NaN or infinite features: ids {describe_ids(bad)}. "
            "Fix: impute or remove those rows."
        )
    return features.rename(columns=str)
