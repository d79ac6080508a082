"""Report sections built from stage outputs: compression levels and influence neighbours."""

from __future__ import annotations

import pandas as pd

LEVEL_FIELDS = (
    ("kind", "kind"), ("achieved_sparsity", "sparsity"), ("test_accuracy", "test accuracy"),
    ("cie_count", "CIE"), ("cie_fraction", "CIE fraction"),
    ("compressed_accuracy_cie_all", "compressed acc. on CIE"),
    ("compressed_accuracy_non_cie_all", "compressed acc. on non-CIE"),
    ("size_bytes", "size (bytes)"), ("gzip_size_bytes", "gzip size (bytes)"), ("latency_ms", "latency (ms/batch)"),
)


def compression_rows(compress_summary: dict) -> list[dict]:
    """One row per compression level with the figures a reader compares (missing ones are None)."""
    rows = []
    for tag, level in compress_summary.get("levels", {}).items():
        row = {"level": tag}
        row.update({label: level.get(key) for key, label in LEVEL_FIELDS})
        rows.append(row)
    return rows


def influence_neighbours(topk: pd.DataFrame, test_ids: list[str], per_kind: int = 3, variant: str = "cosine") -> list[dict]:
    """For each test id (in order): its top `per_kind` proponents and opponents among training rows.

    `topk` has columns test_id, train_id, kind ("proponent"/"opponent"), rank, influence, variant.
    The cosine variant is preferred: with raw dot products a few high-norm (often mislabelled) training
    rows become the top opponents of everything.
    """
    if topk.empty:
        return []
    chosen = variant if variant in set(topk["variant"]) else topk["variant"].iloc[0]
    rows = topk[(topk["variant"] == chosen) & (topk["rank"] <= per_kind)]
    neighbours = []
    for test_id in test_ids:
        mine = rows[rows["test_id"] == test_id].sort_values(["kind", "rank"])
        if mine.empty:
            continue
        neighbours.append({
            "test_id": test_id,
            "variant": chosen,
            **{kind: [{"id": r.train_id, "influence": float(r.influence)} for r in mine[mine["kind"] == kind].itertuples()]
               for kind in ("proponent", "opponent")},
        })
    return neighbours
