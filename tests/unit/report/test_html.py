"""The HTML report: every piece of user text is escaped, nothing is loaded from outside, and the page
carries the review queue the JSON twin describes."""

from __future__ import annotations

import re

from exemplar.report.assemble import headline_markdown, queue_table
from exemplar.report.figures import report_figures
from exemplar.report.html import render_html
from exemplar.report.summary import build_report, shown_ids, top_examples
from tests.unit.report.makers import HOSTILE, inputs, thumbnails

import pandas as pd


def render(**extra) -> tuple[dict, str]:
    given = inputs(**extra)
    content = build_report(given, top_k=3, queue_size=6)
    content["stages"] = {"ingest": {HOSTILE: [1, 2]}}
    figures = report_figures(given.scores, content, given.curves, pd.DataFrame(), None)
    return content, render_html(content, figures, thumbnails(sorted(shown_ids(content))), title=HOSTILE)


def test_user_text_is_escaped_everywhere():
    _, html = render()
    assert HOSTILE not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_nothing_is_external_and_a_policy_forbids_requests():
    _, html = render()
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", html)
    assert "default-src 'none'" in html
    assert re.search(r"src=\"data:image/png;base64,", html)


def test_queue_holds_train_and_test_rows_in_rank_order_with_reasons():
    content, html = render()
    queue = content["review_queue"]
    ranks = [row["audit_rank"] for row in queue]
    assert ranks == sorted(ranks) and ranks[0] == 1
    assert sum(r["split"] == "train" for r in queue) == 6 and sum(r["split"] == "test" for r in queue) == 6
    assert all(1 <= len(r["why"]) <= 3 and r["reason"] == r["why"][0]["signal"] for r in queue)
    assert all(0 <= r["audit_percentile"] <= 100 for r in queue)
    atypical_only = {r["id"] for r in content["atypical_queue"]} - {r["id"] for r in queue}
    assert html.count('class="qrow"') == 12 + len(atypical_only)


def test_atypical_queue_is_its_own_order_and_shares_the_rows_of_the_table():
    content, html = render()
    atypical, audit_ids = content["atypical_queue"], {r["id"] for r in content["review_queue"]}
    for split in ("train", "test"):
        ranks = [r["atypical_rank"] for r in atypical if r["split"] == split]
        assert ranks == sorted(ranks) and ranks[0] == 1 and len(ranks) == 6
    only = [r for r in atypical if r["id"] not in audit_ids]
    both = [r for r in atypical if r["id"] in audit_ids]
    assert only, "the hand-made table's atypical queue should differ from the audit queue"
    for row in only:
        assert f'data-queues="atypical" data-audit-rank="{row["audit_rank"]}" data-atypical-rank="{row["atypical_rank"]}"' in html
    for row in both:
        assert f'data-queues="audit atypical" data-audit-rank="{row["audit_rank"]}"' in html
    assert 'data-queue="atypical"' in html and "atyp. #1<" in html


def test_one_section_per_signal_with_a_histogram():
    content, html = render()
    names = [s["name"] for s in content["signal_sections"]]
    assert names == ["loss", "margin", "input_outlier", "cie"]
    assert html.count("histogram\" src=\"data:image/png") == 4


def test_quarantined_rows_are_listed_by_file_and_per_class_table_has_rates():
    content, html = render()
    assert content["summary"]["quarantined"]["rows"][0]["file"].endswith(".png")
    assert "q-1" in html
    row = content["per_class"][0]
    assert row["accuracy_dense"] == 0.9 and row["accuracy_p90"] == 0.5
    assert 0 <= row["suspected_noise_rate"] <= 1 and 0 <= row["cie_rate"] <= 1


def test_top_examples_are_ordered_by_score_then_id_and_skip_nan():
    table = pd.DataFrame({"id": ["b", "a", "c", "d"], "x_score": [1.0, 1.0, 2.0, float("nan")]})
    assert top_examples(table, "x_score", 4)["id"].tolist() == ["c", "a", "b"]
    assert top_examples(table, "x_score", 2, lowest=True)["id"].tolist() == ["a", "b"]


def test_prefect_headline_and_table():
    content, _ = render()
    text = headline_markdown(content)
    assert text.startswith("# exemplar data audit") and "Review first" in text
    first = next(r for r in content["atypical_queue"] if r["split"] == "train")
    assert "## Most atypical inputs" in text and f"1. `{first['id']}` given" in text.split("## Most atypical inputs")[1]
    rows = queue_table(content, 3)
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows) and len(rows) == 3


def test_pictures_are_made_only_for_shown_rows_so_size_does_not_grow_with_the_data():
    from tests.unit.report.makers import scores_table

    shown = []
    for n in (60, 600):
        content = build_report(inputs(scores_table(n)), top_k=4, queue_size=5)
        shown.append(len(shown_ids(content)))
    bound = 2 * 5 + 4 * (4 + 2) + 2  # two queues, four signals (top 4, bottom 2), CIE cards
    assert all(count <= bound for count in shown)


def test_tables_show_feature_values_instead_of_pictures():
    from tests.unit.report.makers import scores_table

    scores = scores_table()
    features = pd.DataFrame({"id": scores["id"], "age": range(len(scores)), "income": [1.5] * len(scores)})
    given = inputs(scores, features=features)
    given.dataset["modality"] = "table"
    content = build_report(given, top_k=3, queue_size=4)
    html = render_html(content, {}, {})
    assert content["review_queue"][0]["features"] == {"age": float(scores.set_index("id").index.get_loc(content["review_queue"][0]["id"])), "income": 1.5}
    assert "<th>features</th>" in html and "income=1.5" in html and "data:image/png" not in html


def test_tables_show_text_and_boolean_values_as_given_and_escaped():
    """A table's categories are what a reviewer must see (they were shown as n/a): text and booleans stay as
    given, a gap is n/a, and markup in a cell is escaped."""
    from tests.unit.report.makers import scores_table

    scores = scores_table()
    n = len(scores)
    features = pd.DataFrame({"id": scores["id"], "city": ["<b>Oslo</b>"] * n, "member": [True] * n,
                             "income": [None] * n, "age": range(n), "note": ["x" * 500] * n})
    given = inputs(scores, features=features)
    given.dataset["modality"] = "table"
    content = build_report(given, top_k=3, queue_size=4)
    first = content["review_queue"][0]["features"]
    assert first["city"] == "<b>Oslo</b>" and first["member"] is True and first["income"] is None
    html = render_html(content, {}, {})
    assert "city=&lt;b&gt;Oslo&lt;/b&gt;" in html and "member=True" in html and "income=n/a" in html and "<b>Oslo</b>" not in html
    assert "note=" + "x" * 79 + "…<" in html and first["note"] == "x" * 500  # long text cut on the page, whole in the JSON


def test_pruning_curve_and_training_curves_are_drawn_when_present():
    curve = pd.DataFrame([{"score": s, "direction": d, "fraction_kept": f, "seed": seed, "test_accuracy": 0.5 + f / 3, "n_train": int(100 * f)}
                          for s in ("el2n", "random") for d in ("keep_hard",) for f in (0.3, 0.6, 1.0) for seed in (0, 1)])
    curves = pd.DataFrame({"seed": [0, 0, 1, 1], "epoch": [1, 2, 1, 2], "accuracy": [0.5, 0.8, 0.4, 0.9], "confidence": [0.4, 0.7, 0.3, 0.8]})
    given = inputs(prune_curve=curve, curves=curves)
    content = build_report(given, top_k=3, queue_size=4)
    figures = report_figures(given.scores, content, given.curves, pd.DataFrame(), given.prune_curve)
    html = render_html(content, figures, {})
    assert {"prune_curve", "training"} <= set(figures)
    assert 'alt="pruning curve"' in html and 'alt="training curves"' in html
    assert content["prune_curve"][0]["score"] == "el2n"


def test_separately_ranked_splits_each_fill_their_queue():
    from tests.unit.report.makers import scores_table

    scores = scores_table()  # fused as the pipeline does: audit_rank for training rows, audit_rank_test for test rows
    assert scores.loc[scores["split"] == "test", "audit_rank"].isna().all() and "audit_rank_test" in scores
    queue = build_report(inputs(scores), top_k=3, queue_size=4)["review_queue"]
    for split in ("train", "test"):
        assert [r["audit_rank"] for r in queue if r["split"] == split] == [1, 2, 3, 4]


def test_masked_rows_leave_the_queue():
    from tests.unit.report.makers import scores_table

    scores = scores_table()
    first = scores.loc[scores["audit_rank"].idxmin(), "id"]
    scores.loc[scores["id"] == first, ["keep", "drop_reason"]] = [False, "reviewer_removed"]
    queue = build_report(inputs(scores), top_k=3, queue_size=4)["review_queue"]
    assert first not in {r["id"] for r in queue} and len(queue) == 8


def test_fusion_facts_name_the_recipe_its_changes_and_the_fused_columns():
    from exemplar.report.summary import fusion_facts
    from exemplar.scoring.fusion import DEFAULT, fusion_config

    scores = pd.DataFrame({"loss_score": [0.1], "vog_score": [1.0], "outlier_score": [2.0], "input_outlier_score": [3.0],
                           "is_label_conflict": [0.0]})
    signals = ["loss_score", "vog_score", "outlier_score", "input_outlier_score"]
    shipped = fusion_facts(scores, signals, DEFAULT)
    assert shipped["changed"] == {} and shipped["recipe"]["exclude"] == ["outlier_score"]
    assert shipped["fused_columns"] == ["loss_score", "input_outlier_score", "is_label_conflict"]  # vog: direction 0
    assert shipped["atypical_columns"] == ["input_outlier_score"] and shipped["duplicates_evidence"] == "is_label_conflict"
    every = fusion_facts(scores, signals, fusion_config({"exclude": [], "alpha": 0.2}))
    assert every["changed"] == {"exclude": [], "alpha": 0.2}
    assert every["atypical_columns"] == ["outlier_score", "input_outlier_score"]
    assert "model_shares" not in every
    # with the held-out ensemble fused and conflict=copies, the copies count inside it: the flag column is not fused
    held_out = scores.assign(oos_confidence_score=[0.2], population_confidence_score=[0.4], ensemble_confidence_score=[0.3])
    held_signals = [*signals, "oos_confidence_score", "population_confidence_score", "ensemble_confidence_score"]
    with_copies = fusion_facts(held_out, held_signals, fusion_config({"conflict": "copies"}))
    assert with_copies["duplicates_evidence"] == "duplicate_of" and "is_label_conflict" not in with_copies["fused_columns"]
    assert "ensemble_confidence_score" in with_copies["fused_columns"]
    flagged = fusion_facts(held_out, held_signals, DEFAULT)
    assert flagged["duplicates_evidence"] == "is_label_conflict" and flagged["fused_columns"][-1] == "is_label_conflict"
    # conflict=lift: the flag (or the share) multiplies the label evidence; it is read, not fused as a column
    lifted = fusion_facts(held_out, held_signals, fusion_config({"conflict": "lift"}))
    assert lifted["duplicates_evidence"] == "is_label_conflict" and "is_label_conflict" not in lifted["fused_columns"]


def test_fusion_facts_give_the_models_shares_under_the_skill_balance():
    from exemplar.report.summary import fusion_facts
    from exemplar.scoring.fusion import fusion_config

    # the learner gives the given labels p 0.9 and 0.8, the population 0.1 and 0.2 -> all weight on the learner
    scores = pd.DataFrame({"split": ["train", "train", "test"], "loss_score": [0.1, 0.2, 0.3],
                           "oos_confidence_score": [0.1, 0.2, 0.5], "population_confidence_score": [0.9, 0.8, 0.5]})
    signals = ["loss_score", "oos_confidence_score", "population_confidence_score"]
    facts = fusion_facts(scores, signals, fusion_config({"balance": "skill", "label": "members"}))
    assert facts["model_shares"]["train"] == {"network": 0.0, "crossfit": 1.0}
    assert set(facts["model_shares"]) == {"train", "test"}
