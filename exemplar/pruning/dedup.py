"""Exact-duplicate detection producing a ``keep`` mask (the data itself is never rewritten)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def exact_duplicate_mask(table: pd.DataFrame) -> pd.DataFrame:
    """Mark all but one row of each ``content_hash`` group as dropped.

    The kept row is the first training row of the group (else the first row), so a test row that
    repeats a training row is the one removed (that is split leakage). Groups whose labels disagree
    are flagged ``is_label_conflict`` on every member, and each member's ``label_disagreement`` is the share
    of its group's other rows whose label differs from its own (:func:`label_disagreement`).

    Returns a frame keyed by ``id`` with columns ``keep`` (bool), ``drop_reason`` (str, "" when kept),
    ``duplicate_of`` (id of the kept row, "" when kept), ``is_label_conflict`` (bool) and
    ``label_disagreement`` (float in [0, 1]).
    """
    order = np.lexsort((np.arange(len(table)), (table["split"] != "train").to_numpy()))
    ordered = table.iloc[order]
    first_id = ordered.groupby("content_hash", sort=False)["id"].transform("first")
    disagreement = label_disagreement(ordered["content_hash"], ordered["label"])
    is_copy = (ordered["id"] != first_id).to_numpy()
    mask = pd.DataFrame(
        {
            "id": ordered["id"].to_numpy(),
            "keep": ~is_copy,
            "drop_reason": np.where(is_copy, "exact_duplicate", ""),
            "duplicate_of": np.where(is_copy, first_id.to_numpy(), ""),
            "is_label_conflict": disagreement > 0,  # every member of a group with two labels has a copy labelled otherwise
            "label_disagreement": disagreement,
        }
    )
    return mask.set_index("id").loc[table["id"]].reset_index()


def label_disagreement(content_hash: pd.Series, labels: pd.Series) -> np.ndarray:
    """(N,) for each row, the share of the other rows with the same content (its exact duplicates) whose
    label differs from its own; 0 for a row without duplicates. A pair that disagrees gives 1 to both rows;
    in a group of ten identical inputs, nine labelled a and one b, the b row gets 1 and each a row 1/9: the
    row that is outvoted by its own copies carries the evidence, not every member of the group alike."""
    others, same = copy_counts(content_hash.to_numpy(), labels.to_numpy())
    return np.divide(others - same, others, out=np.zeros(len(others)), where=others > 0)


def copy_counts(group: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) each row's number of copies (the other rows of its `group`) and (N,) how many of them carry its label."""
    keys = pd.DataFrame({"group": group, "label": labels})
    others = keys.groupby("group", sort=False)["label"].transform("size").to_numpy(dtype=np.float64) - 1.0
    same = keys.groupby(["group", "label"], sort=False)["label"].transform("size").to_numpy(dtype=np.float64) - 1.0
    return others, same


def keep_all(table: pd.DataFrame) -> pd.DataFrame:
    """A mask that keeps every row (used when duplicate removal is switched off)."""
    return pd.DataFrame(
        {
            "id": table["id"].to_numpy(),
            "keep": True,
            "drop_reason": "",
            "duplicate_of": "",
            "is_label_conflict": False,
            "label_disagreement": 0.0,
        }
    )
