"""The HTML report: every piece of user text is escaped and nothing is loaded from outside."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from exemplar.data.images import png_data_uri
from exemplar.report.html import render_html
from exemplar.report.summary import build_report, score_columns, top_examples
from exemplar.scoring.fusion import fuse_scores

HOSTILE = "<script>alert('x')</script>"


def scores_table(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({
        "id": [f"id-{i}" for i in range(n - 1)] + [HOSTILE],
        "split": ["train", "test"] * (n // 2),
        "label": rng.integers(0, 2, n),
        "label_name": ["cat", HOSTILE] * (n // 2),
        "pred": rng.integers(0, 2, n),
        "pred_name": ["cat", "dog"] * (n // 2),
        "loss_score": rng.random(n),
        "margin_score": rng.random(n),
    })
    return fuse_scores(table, score_columns(table))


def test_user_text_is_escaped_everywhere():
    table = scores_table()
    report = build_report(table, {"source": HOSTILE, "hash": "h"}, {"note": HOSTILE}, top_k=3, queue_size=6)
    report["stages"] = {"ingest": {HOSTILE: [1, 2]}}
    html = render_html(report, {}, title=HOSTILE)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_thumbnails_are_inline_png_and_nothing_is_external():
    table = scores_table()
    uri = png_data_uri(np.zeros((1, 8, 8), dtype=np.uint8), scale=4)
    report = build_report(table, {"source": "s", "hash": "h"}, {}, top_k=2, queue_size=3)
    html = render_html(report, {"id-0": uri})
    assert uri.startswith("data:image/png;base64,")
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", html)


def test_top_examples_are_ordered_by_score_then_id():
    table = pd.DataFrame({"id": ["b", "a", "c"], "x_score": [1.0, 1.0, 2.0]})
    assert top_examples(table, "x_score", 3)["id"].tolist() == ["c", "a", "b"]


def test_review_queue_follows_audit_rank():
    table = scores_table(8)
    report = build_report(table, {"source": "s", "hash": "h"}, {}, top_k=2, queue_size=8)
    ranks = [row["audit_rank"] for row in report["review_queue"] if row["audit_rank"] is not None]  # test rows: audit_rank_test
    assert ranks == sorted(ranks) and ranks[0] == 1
