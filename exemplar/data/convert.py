"""Pass 2 of ingestion: decode each batch once into canonical rows; unusable rows go to quarantine.

Images are decoded, converted to the planned channels and resized to the planned (H, W); table
features are kept as given, missing values included (the encoding imputes them), and profiled per
column. Each usable row becomes one canonical row (see canonical.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from exemplar.data.canonical import DatasetHasher, feature_table, image_table
from exemplar.data.columns import ColumnProfile
from exemplar.data.images import ImageDecodeError, array_to_image, decode_image, is_grayscale, to_array
from exemplar.data.quarantine import label_text, original_text
from exemplar.data.raw import RawBatch
from exemplar.data.scan import PROBLEMS, TRAIN, IngestPlan

SPLIT_NAMES = {0: "train", 1: "test"}


@dataclass
class ConvertStats:
    """Running totals of pass 2 (memory independent of the number of rows, except the quarantine)."""

    class_names: list[str]
    rows: int = 0
    resized: int = 0
    recoloured: int = 0
    quarantine: list[dict] = field(default_factory=list)
    hasher: DatasetHasher = field(default_factory=DatasetHasher)
    counts: np.ndarray | None = None  # (2, K) rows per split (train, test) and class
    feature_names: list[str] = field(default_factory=list)
    profile: ColumnProfile | None = None  # tables: missing cells, all-missing and constant columns

    def __post_init__(self) -> None:
        self.counts = np.zeros((2, len(self.class_names)), dtype=np.int64)
        self.profile = ColumnProfile(list(self.feature_names))

    def add_rows(self, frame: pd.DataFrame, codes: np.ndarray, splits: np.ndarray) -> None:
        self.rows += len(frame)
        self.hasher.update(frame)
        np.add.at(self.counts, (splits.astype(np.int64), codes), 1)


def convert_batch(batch: RawBatch, offset: int, plan: IngestPlan, stats: ConvertStats, feature_names: list[str],
                  feature_types: list[str] | None = None) -> pd.DataFrame:
    """Canonical rows (a DataFrame) for the usable rows of `batch`, whose first row is input row `offset`.

    `feature_names` is empty for images; `feature_types` their types (all numeric when None).
    Unusable rows are appended to ``stats.quarantine``.
    """
    n = len(batch)
    problems = [PROBLEMS[c] for c in plan.problems[offset : offset + n].tolist()]
    details = [_detail(batch, plan, offset + i, i, p) for i, p in enumerate(problems)]
    if feature_names:
        data = _features(batch, feature_names, feature_types, problems, details)
    else:
        data = _images(batch, plan, problems, details, stats)
    good = np.array([p == "" for p in problems], dtype=bool)
    stats.quarantine.extend(_records(batch, problems, details, ~good))
    codes = plan.codes[offset : offset + n][good]
    splits = plan.splits[offset : offset + n][good]
    ids = batch.keys["id"].astype(str).to_numpy()[good].tolist()
    split_names = [SPLIT_NAMES[int(s)] for s in splits]
    if isinstance(data, pd.DataFrame):
        frame = feature_table(ids, codes, stats.class_names, split_names, data.loc[good], feature_types)
        stats.profile.update(data.loc[good].reset_index(drop=True), splits == TRAIN)
    else:
        frame = image_table(ids, codes, stats.class_names, split_names, data)
    stats.add_rows(frame, codes, splits)
    return frame


def _detail(batch: RawBatch, plan: IngestPlan, row: int, i: int, problem: str) -> str:
    keys = batch.keys
    if not problem:
        return ""
    if keys["detail"].iat[i]:
        return str(keys["detail"].iat[i])
    if row in plan.probe_problems:
        return plan.probe_problems[row]
    if problem == "duplicate_id":
        return f"id {keys['id'].iat[i]!r} was first used by input row {plan.first_of[row]}"
    if problem == "invalid_split":
        return f"split {label_text(keys['split'].iat[i])!r} is not 'train' or 'test'"
    if problem == "invalid_label":
        return f"label {label_text(keys['label'].iat[i])!r} does not fit the other labels ({_classes(plan)})"
    return "no label given"


def _classes(plan: IngestPlan) -> str:
    shown = ", ".join(plan.class_names[:5])
    return f"classes: {shown}{', ...' if len(plan.class_names) > 5 else ''}"


def _features(batch: RawBatch, names: list[str], types: list[str] | None, problems: list[str], details: list[str]) -> pd.DataFrame:
    """The feature columns of `batch` as given. Numeric columns are checked in float32, the dtype the
    model reads: a finite value that overflows it (|x| > 3.4e38) quarantines its row as
    ``non_finite_feature``; NaN and infinities are missing values, kept (the encoding imputes them)."""
    given = batch.features
    frame = (given if given.columns.tolist() == names else given[names]).reset_index(drop=True)
    numeric = [n for n, kind in zip(names, types or ["numeric"] * len(names)) if kind == "numeric"]
    if not numeric:
        return frame
    values = (frame if len(numeric) == len(names) else frame[numeric]).to_numpy(dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        overflow = np.isfinite(values) & ~np.isfinite(values.astype(np.float32))
    for i in np.flatnonzero(overflow.any(axis=1)):
        if not problems[i]:
            bad = [numeric[j] for j in np.flatnonzero(overflow[i])]
            problems[i] = "non_finite_feature"
            details[i] = (f"not a finite number in float32 (the model's dtype; |x| <= 3.4e38) in column(s) "
                          f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
    return frame


def _images(batch: RawBatch, plan: IngestPlan, problems: list[str], details: list[str], stats: ConvertStats) -> np.ndarray:
    """Decoded, normalised pixels (G, C, H, W) of the usable rows; marks undecodable ones."""
    arrays = []
    for i in range(len(batch)):
        if problems[i]:
            continue
        try:
            image = decode_image(batch.images[i]) if batch.arrays is None else array_to_image(batch.arrays[i])
        except ImageDecodeError as error:
            problems[i], details[i] = error.reason, str(error)
            continue
        stats.resized += (image.height, image.width) != plan.image_size
        stats.recoloured += is_grayscale(image) != (plan.channels == 1)
        arrays.append(to_array(image, plan.channels, plan.image_size))
    if not arrays:
        return np.zeros((0, plan.channels, *plan.image_size), dtype=np.uint8)
    return np.stack(arrays)


def _records(batch: RawBatch, problems: list[str], details: list[str], bad: np.ndarray) -> list[dict]:
    keys = batch.keys
    records = []
    for i in np.flatnonzero(bad):
        original = str(keys["original"].iat[i])
        if not original and batch.features is not None:
            original = original_text(batch.features.iloc[i].to_dict())
        records.append(
            {
                "id": str(keys["id"].iat[i]), "reason": problems[i], "detail": details[i], "file": str(keys["file"].iat[i]),
                "row": int(keys["row"].iat[i]), "label": label_text(keys["label"].iat[i]),
                "split": label_text(keys["split"].iat[i]), "original": original, "image": _original_image(batch, i),
            }
        )
    return records


def _original_image(batch: RawBatch, i: int) -> bytes | None:
    if batch.images is not None:
        return batch.images[i]
    if batch.arrays is not None:
        return np.ascontiguousarray(batch.arrays[i]).tobytes()
    return None
