"""Report sections: compression rows and TracIn neighbours on hand-made inputs."""

from __future__ import annotations

import pandas as pd

from exemplar.report.sections import compression_rows, influence_neighbours


def test_compression_rows_keep_level_order_and_fill_missing_figures():
    summary = {"levels": {"p50": {"kind": "pruning", "achieved_sparsity": 0.5, "test_accuracy": 0.9, "cie_count": 3},
                          "int8_dynamic": {"kind": "quantization", "test_accuracy": 0.95}}}
    rows = compression_rows(summary)
    assert [r["level"] for r in rows] == ["p50", "int8_dynamic"]
    assert rows[0]["CIE"] == 3 and rows[1]["sparsity"] is None


def test_influence_neighbours_prefers_cosine_and_cuts_at_rank():
    topk = pd.DataFrame([
        {"test_id": "t1", "train_id": f"a{r}", "kind": kind, "rank": r, "influence": sign * (10 - r), "variant": variant}
        for variant in ("dot", "cosine") for kind, sign in (("proponent", 1), ("opponent", -1)) for r in (1, 2, 3, 4)
    ])
    [entry] = influence_neighbours(topk, ["t1", "missing"], per_kind=2)
    assert entry["variant"] == "cosine"
    assert [n["id"] for n in entry["proponent"]] == ["a1", "a2"]
    assert [n["influence"] for n in entry["opponent"]] == [-9.0, -8.0]


def test_influence_neighbours_of_an_empty_table():
    empty = pd.DataFrame(columns=["test_id", "train_id", "kind", "rank", "influence", "variant"])
    assert influence_neighbours(empty, ["t1"]) == []
