"""The filter stage's logic: exact and near duplicates as a ``keep`` mask, plus the audit facts
(label conflicts, split leakage, class balance) that go into ``stages/filter.json``.

The mask has one row per dataset row: ``id``, ``keep``, ``drop_reason`` ("", "exact_duplicate" or
"near_duplicate"), ``duplicate_of`` (kept id), ``is_label_conflict``, ``near_duplicate_group``
(-1 for none), ``near_duplicate_of``, ``is_split_leak`` (its content, exactly or nearly, is in both
train and test).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.data.canonical import Dataset, input_array, pixel_array
from exemplar.data.ingest import check_trainable
from exemplar.pruning.config import PruneConfig
from exemplar.pruning.dedup import exact_duplicate_mask, keep_all
from exemplar.pruning.near_duplicates import (
    centred_pixels,
    near_duplicate_groups,
    near_duplicate_table,
    reduce_dimensions,
)


def filter_dataset(dataset: Dataset, config: PruneConfig) -> tuple[pd.DataFrame, dict]:
    """(keep mask, summary) for `dataset`; raises ExemplarError if too few training rows are kept."""
    table = dataset.table
    exact = exact_duplicate_mask(table)
    mask = exact.copy() if config.drop_exact_duplicates else keep_all(table)
    mask["near_duplicate_group"], mask["near_duplicate_of"] = np.int64(-1), ""
    near = {"searched": False, "reason": "prune.find_near_duplicates=false"}
    if config.find_near_duplicates:
        near = _near_duplicates(dataset, mask, config)
    exact_leaks = _split_leaks(table, "content_hash")
    mask["is_split_leak"] = exact_leaks | _split_leaks(mask.assign(split=table["split"].to_numpy()), "near_duplicate_group")
    summary = {
        "kept": int(mask["keep"].sum()),
        "dropped": int((~mask["keep"]).sum()),
        "dropped_by_reason": {r: int(n) for r, n in mask.loc[~mask["keep"], "drop_reason"].value_counts().items()},
        "label_conflicts": int(mask["is_label_conflict"].sum()),
        "exact_duplicates": _exact_facts(table, exact, config.groups_shown),
        "near_duplicates": near,
        "split_leakage": _leak_facts(table, mask, exact_leaks, config.groups_shown),
        "class_balance": class_balance(table, mask["keep"].to_numpy()),
    }
    train_kept = (table["split"] == "train").to_numpy() & mask["keep"].to_numpy()
    counts = np.bincount(table["label"].to_numpy()[train_kept], minlength=dataset.info.num_classes)
    check_trainable(counts, dataset.info.class_names, f"after filtering {dataset.info.source}",
                    row_counts=np.bincount(table["label"].to_numpy(), minlength=dataset.info.num_classes))
    return mask, summary


def embedding(dataset: Dataset) -> np.ndarray:
    """Vectors compared for near duplicates: centred pixels, or the table's encoded model inputs
    (standardised numbers, 0/1 categories and missing indicators, fit on training rows), (N, D)."""
    if dataset.info.modality == "image":
        return centred_pixels(pixel_array(dataset))
    return input_array(dataset)


def _near_duplicates(dataset: Dataset, mask: pd.DataFrame, config: PruneConfig) -> dict:
    kept = mask["keep"].to_numpy()
    if kept.sum() > config.near_duplicate_max_rows:
        return {"searched": False, "reason": f"{int(kept.sum())} rows > prune.near_duplicate_max_rows={config.near_duplicate_max_rows}"}
    table = dataset.table[kept]
    groups = near_duplicate_groups(reduce_dimensions(embedding(dataset)[kept]), config.near_duplicate_threshold)
    found = near_duplicate_table(table["id"], table["split"], groups)
    rows = np.flatnonzero(kept)
    mask.loc[rows, "near_duplicate_group"] = found["near_duplicate_group"].to_numpy()
    mask.loc[rows, "near_duplicate_of"] = found["near_duplicate_of"].to_numpy()
    if config.drop_near_duplicates:
        copies = rows[found["near_duplicate_of"].to_numpy() != ""]
        mask.loc[copies, "keep"] = False
        mask.loc[copies, "drop_reason"] = "near_duplicate"
        mask.loc[copies, "duplicate_of"] = mask.loc[copies, "near_duplicate_of"]
    return _near_facts(table, found, config)


def _near_facts(table: pd.DataFrame, found: pd.DataFrame, config: PruneConfig) -> dict:
    members = found[found["near_duplicate_group"] >= 0]
    labels = table["label"].to_numpy()[found["near_duplicate_group"].to_numpy() >= 0]
    conflicts = pd.Series(labels).groupby(members["near_duplicate_group"].to_numpy()).nunique()
    listed = members.groupby("near_duplicate_group")["id"].apply(list).head(config.groups_shown)
    return {
        "searched": True,
        "threshold": config.near_duplicate_threshold,
        "groups": int(members["near_duplicate_group"].nunique()),
        "rows_in_groups": int(len(members)),
        "groups_with_label_conflict": int((conflicts > 1).sum()),
        "dropped": int(len(members) - members["near_duplicate_group"].nunique()) if config.drop_near_duplicates else 0,
        "groups_listed": [ids[:10] for ids in listed.tolist()],
    }


def _exact_facts(table: pd.DataFrame, exact: pd.DataFrame, shown: int) -> dict:
    copies = exact[~exact["keep"]]
    return {
        "groups": int(copies["duplicate_of"].nunique()),
        "copies": int(len(copies)),
        "label_conflict_rows": int(exact["is_label_conflict"].sum()),
        "label_conflict_ids": exact.loc[exact["is_label_conflict"], "id"].head(shown).tolist(),
    }


def _split_leaks(frame: pd.DataFrame, key: str) -> np.ndarray:
    """(N,) bool: the row's `key` group holds both train and test rows (groups of -1 never leak)."""
    valid = frame[key] != -1 if frame[key].dtype.kind in "iu" else pd.Series(True, index=frame.index)
    both = frame[valid].groupby(key)["split"].nunique()
    leaking = set(both[both > 1].index)
    return (frame[key].isin(leaking) & valid).to_numpy()


def _leak_facts(table: pd.DataFrame, mask: pd.DataFrame, exact: np.ndarray, shown: int) -> dict:
    """Counts and ids of test rows whose content (exactly or nearly) also appears in train.
    `exact`: (N,) bool from ``_split_leaks(table, "content_hash")``."""
    is_test = (table["split"] == "test").to_numpy()
    leak_ids = table.loc[mask["is_split_leak"].to_numpy() & is_test, "id"]
    return {
        "exact_test_rows": int((exact & is_test).sum()),
        "near_test_rows": int((mask["is_split_leak"].to_numpy() & ~exact & is_test).sum()),
        "test_ids": leak_ids.head(shown).tolist(),
    }


def class_balance(table: pd.DataFrame, keep: np.ndarray) -> dict:
    """Kept rows per class and split, and the imbalance ratio (largest / smallest kept train class)."""
    kept = table[keep]
    per_split = {split: {str(k): int(v) for k, v in kept[kept["split"] == split].groupby("label_name").size().items()} for split in ("train", "test")}
    train = np.array(list(per_split["train"].values()) or [0])
    return {**per_split, "imbalance_ratio": float(train.max() / train.min()) if train.min() > 0 else float("inf")}
