"""Quarantine: rows that cannot be used are kept aside with the reason, never dropped silently.

``quarantine.parquet`` holds one row per rejected input row: ``id``, ``reason`` (one of
:data:`REASONS`), ``detail`` (plain words), ``file`` and ``row`` (where it came from), ``label`` and
``split`` as given (text), ``original`` (the row's other values as JSON text, or the image path) and
``image`` (the original image bytes, when the row had any).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa

REASONS = {
    "undecodable_image": "the bytes are not an image Pillow can decode (corrupt or truncated)",
    "zero_size_image": "the image file is empty or has zero width/height",
    "image_too_large": "the image has more pixels than data.max_image_pixels (judged from its header, never decoded)",
    "missing_image_file": "the image path in the table does not exist",
    "missing_label": "the label is empty, null or NaN, or the file is not inside a class folder",
    "invalid_label": "a non-numeric label in a column whose labels are numbers (or outside label_names)",
    "wrong_feature_count": "the row has a different number of fields than the header",
    "duplicate_id": "the id was already used by an earlier row (the first one is kept)",
    "invalid_split": "split is neither 'train' nor 'test'",
    "non_finite_feature": "a number overflows float32, the model's dtype (|x| > 3.4e38); missing values and infinities are imputed instead",
}

SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("file", pa.string()),
        ("row", pa.int64()), ("label", pa.string()), ("split", pa.string()), ("original", pa.string()),
        ("image", pa.binary()),
    ]
)


def label_text(value: object) -> str:
    """The label as the user wrote it ('' when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value.item() if isinstance(value, np.generic) else value)


def original_text(values: dict) -> str:
    """JSON text of a row's values (NaN and infinities written as such, bytes as their length)."""
    plain = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = f"<{len(value)} bytes>"
        plain[str(key)] = value
    return json.dumps(plain, default=str)


def quarantine_frame(records: list[dict]) -> pd.DataFrame:
    """The quarantine table (columns of :data:`SCHEMA`, in that order) from record dicts."""
    columns = SCHEMA.names
    frame = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    frame["row"] = frame["row"].astype("int64")
    return frame


def quarantine_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)


def count_by_reason(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per reason, every known reason present (0 when none), so runs compare key by key."""
    counts = frame["reason"].value_counts()
    return {reason: int(counts.get(reason, 0)) for reason in REASONS}
