"""Exact-duplicate detection producing a ``keep`` mask (the data itself is never rewritten)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def exact_duplicate_mask(table: pd.DataFrame) -> pd.DataFrame:
    """Mark all but one row of each ``content_hash`` group as dropped.

    The kept row is the first training row of the group (else the first row), so a test row that
    repeats a training row is the one removed (that is split leakage). Groups whose labels disagree
    are flagged ``is_label_conflict`` on every member.

    Returns a frame keyed by ``id`` with columns ``keep`` (bool), ``drop_reason`` (str, "" when kept),
    ``duplicate_of`` (id of the kept row, "" when kept) and ``is_label_conflict`` (bool).
    """
    order = np.lexsort((np.arange(len(table)), (table["split"] != "train").to_numpy()))
    ordered = table.iloc[order]
    first_id = ordered.groupby("content_hash", sort=False)["id"].transform("first")
    n_labels = ordered.groupby("content_hash", sort=False)["label"].transform("nunique")
    is_copy = (ordered["id"] != first_id).to_numpy()
    mask = pd.DataFrame(
        {
            "id": ordered["id"].to_numpy(),
            "keep": ~is_copy,
            "drop_reason": np.where(is_copy, "exact_duplicate", ""),
            "duplicate_of": np.where(is_copy, first_id.to_numpy(), ""),
            "is_label_conflict": (n_labels > 1).to_numpy(),
        }
    )
    return mask.set_index("id").loc[table["id"]].reset_index()


def keep_all(table: pd.DataFrame) -> pd.DataFrame:
    """A mask that keeps every row (used when duplicate removal is switched off)."""
    return pd.DataFrame(
        {
            "id": table["id"].to_numpy(),
            "keep": True,
            "drop_reason": "",
            "duplicate_of": "",
            "is_label_conflict": False,
        }
    )
