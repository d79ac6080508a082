"""What changed since the last run: the reviewer's decisions applied, and how the ranks moved."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.report.queue import review_rank

SHOWN = 20  # rows listed per change list


def decisions_applied(record: pd.DataFrame, scores: pd.DataFrame, source: str | None) -> dict | None:
    """The applied-decisions record (ingest's ``decisions.parquet``) with each row's state now:
    its label and whether it is kept (removed rows are masked, never deleted). None without decisions."""
    if not source and record.empty:
        return None
    now = scores.set_index("id")
    rows = []
    for entry in record.itertuples():
        present = entry.id in now.index
        rows.append({
            "id": entry.id, "action": entry.action, "old_label": entry.old_label, "new_label": entry.new_label,
            "note": entry.note, "changed": bool(entry.changed),
            "label_now": str(now.at[entry.id, "label_name"]) if present else None,
            "kept_now": bool(now.at[entry.id, "keep"]) if present and "keep" in now else None,
        })
    counts = {a: int((record["action"] == a).sum()) for a in ("relabel", "remove", "keep")}
    return {"source": source, "counts": counts, "labels_changed": int((record["changed"] & (record["action"] == "relabel")).sum()),
            "rows_removed": int((record["action"] == "remove").sum()), "rows": rows}


def rank_changes(scores: pd.DataFrame, previous: pd.DataFrame, source: str, queue_size: int) -> dict:
    """Ranks now against an earlier run's ``scores.parquet`` (matched by id; each row's rank in its own
    queue, see :func:`review_rank`): Spearman correlation, the biggest moves, and which ids entered or
    left the first `queue_size` ranks."""
    ranks = lambda table: pd.DataFrame({"id": table["id"], "audit_rank": review_rank(table)}).dropna()
    both = ranks(scores).merge(ranks(previous), on="id", suffixes=("", "_before"))
    if both.empty:
        return {"source": source, "compared": 0}
    both["move"] = both["audit_rank_before"] - both["audit_rank"]  # positive: now reviewed sooner
    top_now = set(ranks(scores).nsmallest(queue_size, "audit_rank")["id"])
    top_before = set(ranks(previous).nsmallest(queue_size, "audit_rank")["id"])
    spearman = float(np.corrcoef(both["audit_rank"].rank(), both["audit_rank_before"].rank())[0, 1]) if len(both) > 1 else None
    listed = lambda frame: frame.head(SHOWN)[["id", "audit_rank_before", "audit_rank", "move"]].to_dict("records")
    return {
        "source": source, "compared": int(len(both)), "spearman": spearman,
        "entered_queue": sorted(top_now - top_before), "left_queue": sorted(top_before - top_now),
        "moved_up": listed(both[both["move"] > 0].sort_values("move", ascending=False)),
        "moved_down": listed(both[both["move"] < 0].sort_values("move")),
        "previous_rank": dict(zip(both["id"], both["audit_rank_before"].astype(int))),
    }
