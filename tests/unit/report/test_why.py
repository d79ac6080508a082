"""The "why" column on hand-made score tables: scale-free evidence, one reason per family, 1-3 reasons."""

from __future__ import annotations

import pandas as pd

from exemplar.report.why import evidence, explain, family_of, phrase, reasons


def table() -> pd.DataFrame:
    # row 0 is extreme on loss (label family) and outlier (atypical); row 1 only on margin; others ordinary
    return pd.DataFrame({
        "loss_score": [100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        "margin_score": [9.0, 50.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        "outlier_score": [7.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.5, 0.7],
        "brand_new_score": [0.0] * 10,
    })


def test_evidence_is_the_share_of_rows_at_or_above():
    top = evidence(table(), ["loss_score"])
    assert top.loc[0, "loss_score"] == 10.0  # the largest of 10 rows: top 10%
    assert top.loc[1, "loss_score"] == 100.0  # the smallest: every row is at or above it
    ties = evidence(table(), ["brand_new_score"])
    assert (ties["brand_new_score"] == 100.0).all()


def test_reasons_name_the_strongest_member_per_family_most_extreme_first():
    top = evidence(table(), ["loss_score", "margin_score", "outlier_score", "brand_new_score"])
    named = [c for c, _ in reasons(top.loc[0], top_percent=20.0)]
    assert named == ["loss_score", "outlier_score"]  # margin is in the label family with loss: one per family
    assert [c for c, _ in reasons(top.loc[1], top_percent=20.0)] == ["margin_score"]
    # nothing within the threshold: the strongest is still named
    assert len(reasons(top.loc[5], top_percent=1.0)) == 1


def test_at_most_three_reasons_and_words_for_unknown_signals():
    frame = pd.DataFrame({f"s{i}_score": [10.0, 0, 0, 0] for i in range(5)})
    why = explain(evidence(frame, list(frame.columns)), top_percent=50.0)
    assert len(why[0]) == 3
    assert phrase("brand_new_score") == "brand new unusually high"
    assert family_of("loss_score") == "label" and family_of("brand_new_score") == "brand_new"
    assert "CIE" in phrase("cie_score_p90")


def test_declared_directions_are_followed_and_unfused_signals_never_named(monkeypatch):
    from types import SimpleNamespace

    from exemplar.scoring import registry

    declared = {"loss_score": ("label", 1), "margin_score": ("label", -1), "outlier_score": ("atypical", 0)}
    monkeypatch.setattr(registry, "declared", lambda c: SimpleNamespace(family=declared.get(c, (c, 1))[0], direction=declared.get(c, (c, 1))[1]), raising=False)
    frame = table()
    top = evidence(frame, ["loss_score", "margin_score", "outlier_score"])
    assert list(top.columns) == ["loss_score", "margin_score"]
    assert top.loc[2, "margin_score"] == 10.0  # the lowest margin is now the most suspicious
    assert [c for c, _ in reasons(top.loc[0], top_percent=20.0)] == ["loss_score"]


def test_evidence_is_ranked_within_each_split():
    frame = pd.DataFrame({"split": ["train"] * 4 + ["test"] * 4, "loss_score": [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]})
    top = evidence(frame, ["loss_score"])
    assert top["loss_score"].tolist() == [100.0, 75.0, 50.0, 25.0] * 2
