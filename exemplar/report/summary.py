"""The report's content as plain data (the JSON twin of the HTML page; the pictures are drawn from
the same inputs by :mod:`exemplar.report.render`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from exemplar.report.changes import decisions_applied, rank_changes
from exemplar.report.classes import cie_levels, class_accuracy, per_class_table
from exemplar.report.queue import feature_values, finite, queue_rows
from exemplar.report.sections import influence_neighbours
from exemplar.report.signals import describe, how_to_read
from exemplar.report.why import family_of, signal_name
from exemplar.scoring.fusion import (
    ATYPICAL, CONFLICT_COLUMN, DEFAULT, FusionConfig, duplicates_evidence, families, fused_columns, fuses_conflict_column,
    model_shares,
)
from exemplar.scoring.fusion_config import recipe_settings

SIGNAL_SUFFIX = "_score"
QUARANTINE_SHOWN = 200  # quarantined rows listed by id and file


@dataclass
class ReportInputs:
    """Everything the report reads, loaded by the report task (tables keyed by ``id``)."""

    scores: pd.DataFrame  # the final scores table (see tasks/report.py)
    dataset: dict  # the ingest summary (stages/ingest.json)
    metrics: dict  # the headline numbers
    class_names: list[str]
    features: pd.DataFrame | None = None  # id + feature columns (tables only)
    models: pd.DataFrame = field(default_factory=pd.DataFrame)  # compression.parquet
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)  # quarantine.parquet
    filter_summary: dict = field(default_factory=dict)  # stages/filter.json
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # seed, epoch, accuracy, confidence
    prune_curve: pd.DataFrame | None = None  # prune_curve.parquet when the pruning curve was run
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)  # this run's applied decisions
    previous: pd.DataFrame | None = None  # an earlier run's scores.parquet
    previous_source: str = ""
    influence_topk: pd.DataFrame | None = None  # influence_topk.parquet when TracIn wrote it
    recipe: FusionConfig = DEFAULT  # the fusion recipe audit_score was built with (report.fusion)


def score_columns(scores: pd.DataFrame) -> list[str]:
    """All per-example signal columns (``<name>_score``), excluding the fused ``audit_score``."""
    return [c for c in scores.columns if c.endswith(SIGNAL_SUFFIX) and c != "audit_score"]


def top_examples(scores: pd.DataFrame, column: str, k: int, lowest: bool = False) -> pd.DataFrame:
    """The k rows with the highest (or lowest) finite `column`; ties broken by id so the order is stable."""
    values = scores[column].astype(float)
    present = scores[np.isfinite(values.to_numpy())]
    key = present[column].to_numpy(dtype=float) * (1 if lowest else -1)
    return present.assign(_key=key).sort_values(["_key", "id"], kind="stable").drop(columns="_key").head(k)


def card(record: pd.Series, column: str | None = None) -> dict:
    entry = {"id": str(record["id"]), "split": str(record["split"]), "label_name": str(record["label_name"]),
             "pred_name": str(record["pred_name"]), "wrong": bool(record["pred"] != record["label"])}
    if column:
        entry["value"] = finite(record[column])
    return entry


def signal_sections(scores: pd.DataFrame, signals: list[str], k: int) -> list[dict]:
    """One section per signal: what it measures, how to read it, summary numbers, top and bottom rows."""
    sections = []
    for column in signals:
        values = scores[column].astype(float)
        family = family_of(column)
        sections.append({
            "column": column, "name": signal_name(column), "family": family,
            "description": describe(column), "how_to_read": how_to_read(column, family),
            "rows": int(values.notna().sum()), "median": finite(values.median()), "p95": finite(values.quantile(0.95)),
            "top": [card(r, column) for _, r in top_examples(scores, column, k).iterrows()],
            "bottom": [card(r, column) for _, r in top_examples(scores, column, max(1, k // 2), lowest=True).iterrows()],
        })
    return sections


def cie_section(scores: pd.DataFrame, k: int) -> list[dict]:
    """Per compression level: how many CIEs, and the rows with the highest ``cie_score_<tag>``."""
    levels = []
    for tag in cie_levels(scores):
        flagged = scores[scores[f"is_cie_{tag}"].fillna(False).astype(bool)]
        column = f"cie_score_{tag}" if f"cie_score_{tag}" in scores else f"is_cie_{tag}"
        top = top_examples(flagged.assign(_v=flagged[column].astype(float)), "_v", k)
        levels.append({"level": tag, "count": int(len(flagged)), "top": [card(r, "_v") for _, r in top.iterrows()]})
    return levels


def summary_facts(inputs: ReportInputs) -> dict:
    """Rows, classes, split, quarantined rows (reasons, ids, files) and duplicates."""
    data, scores = inputs.dataset, inputs.scores
    quarantine = inputs.quarantine
    listed = quarantine.drop(columns=[c for c in ("image", "original") if c in quarantine]).head(QUARANTINE_SHOWN)
    drops = inputs.filter_summary
    return {
        "rows": int(len(scores)), "classes": len(inputs.class_names), "class_names": list(inputs.class_names),
        "train": int((scores["split"] == "train").sum()), "test": int((scores["split"] == "test").sum()),
        "quarantined": {"count": int(len(quarantine)), "by_reason": {k: v for k, v in data.get("quarantined_by_reason", {}).items() if v},
                        "rows": listed.astype(str).to_dict("records")},
        "duplicates": {"dropped": drops.get("dropped", 0), "by_reason": drops.get("dropped_by_reason", {}),
                       "label_conflicts": drops.get("label_conflicts", 0),
                       "split_leaks": drops.get("split_leakage", {}).get("exact_test_rows", 0) + drops.get("split_leakage", {}).get("near_test_rows", 0)},
    }


def fusion_facts(scores: pd.DataFrame, signals: list[str], recipe: FusionConfig) -> dict:
    """How ``audit_score`` was built: the recipe (every field), the fields where it differs from the shipped
    default, the columns it fused (``is_label_conflict`` where the duplicates enter as that column), what it read of
    the duplicates (``duplicates_evidence``: ``duplicate_of`` when each exact copy counts inside the held-out
    ensemble, ``is_label_conflict`` or ``label_disagreement``, a member or, with ``conflict="lift"``, the multiplier of
    the label family's evidence, or None) and the atypical columns among the fused ones
    (what the atypical order ranks by); with ``balance="skill"``, the share each split group gave the label family's
    two models (``model_shares``)."""
    fused = fused_columns(signals, tuple(recipe.exclude), recipe.label)
    evidence = duplicates_evidence(list(scores.columns), fused, recipe.conflict)
    fused += [CONFLICT_COLUMN] if fuses_conflict_column(evidence, recipe.conflict) else []
    plain, shipped = recipe_settings(recipe), recipe_settings(DEFAULT)
    facts = {"recipe": plain, "changed": {key: value for key, value in plain.items() if value != shipped[key]},
             "fused_columns": fused, "duplicates_evidence": evidence,
             "atypical_columns": [c for c, f in zip(fused, families(fused)) if f == ATYPICAL]}
    if recipe.balance == "skill":
        facts["model_shares"] = {group: {model: round(share, 4) for model, share in shares.items()}
                                 for group, shares in model_shares(scores, signals, **plain).items()}
    return facts


def build_report(inputs: ReportInputs, top_k: int, queue_size: int, why_top_percent: float = 5.0) -> dict:
    """Assemble the report's content: summary, review queue (training and test rows, by audit rank),
    the atypical-inputs queue (the same, by ``atypical_rank``; empty without an atypical signal), one
    section per signal, CIE per level, per-class table, training and pruning curves, changes since last run."""
    scores, signals = inputs.scores, score_columns(inputs.scores)
    queues = queue_rows(scores, signals, queue_size, why_top_percent, inputs.features)
    queue, atypical = queues["audit"], queues["atypical"]
    classes, class_notes = per_class_table(scores, class_accuracy(inputs.models, inputs.class_names), inputs.class_names)
    content = {
        "dataset": inputs.dataset, "metrics": inputs.metrics, "signals": signals,
        "summary": summary_facts(inputs), "review_queue": queue, "atypical_queue": atypical,
        "fusion": fusion_facts(scores, signals, inputs.recipe),
        "signal_sections": signal_sections(scores, signals, top_k),
        "cie_levels": cie_section(scores, max(1, top_k // 2)),
        "per_class": classes, "per_class_notes": class_notes,
        "training_curves": inputs.curves.to_dict("records"),
        "prune_curve": None if inputs.prune_curve is None else inputs.prune_curve.to_dict("records"),
        "influence": influence(inputs, queue, max(1, top_k // 3)),
        "changes": _changes(inputs, queue, queue_size),
        "counts": {"examples": int(len(scores)), "train": int((scores["split"] == "train").sum()),
                   "test": int((scores["split"] == "test").sum()),
                   "wrong_predictions": int(np.sum(scores["pred"].to_numpy() != scores["label"].to_numpy()))},
    }
    content["feature_cards"] = feature_values(inputs.features, sorted(shown_ids(content) - {r["id"] for r in queue}))
    return content


def influence(inputs: ReportInputs, queue: list[dict], count: int) -> list[dict]:
    """Proponents and opponents (with their given and predicted labels) of the first `count` test rows
    of the queue, when TracIn wrote them."""
    if inputs.influence_topk is None:
        return []
    test_ids = [row["id"] for row in queue if row["split"] == "test"][:count]
    entries = influence_neighbours(inputs.influence_topk, test_ids)
    lookup = inputs.scores.set_index("id")[["label_name", "pred_name"]].astype(str).to_dict("index")
    for entry in entries:
        entry.update(lookup.get(entry["test_id"], {}))
        for kind in ("proponent", "opponent"):
            for neighbour in entry[kind]:
                neighbour.update(lookup.get(neighbour["id"], {}))
    return entries


def _changes(inputs: ReportInputs, queue: list[dict], queue_size: int) -> dict:
    applied = decisions_applied(inputs.decisions, inputs.scores, inputs.dataset.get("decisions", {}).get("source"))
    ranks = None
    if inputs.previous is not None:
        ranks = rank_changes(inputs.scores, inputs.previous, inputs.previous_source, queue_size)
        before = ranks.pop("previous_rank", {})
        for row in queue:
            row["previous_rank"] = int(before[row["id"]]) if row["id"] in before else None
    return {"decisions": applied, "ranks": ranks}


def shown_ids(content: dict) -> set[str]:
    """Every id the page shows a picture (or feature values) for."""
    ids = {r["id"] for r in content["review_queue"] + content.get("atypical_queue", [])}
    for section in content["signal_sections"]:
        ids |= {e["id"] for e in section["top"] + section["bottom"]}
    for level in content["cie_levels"]:
        ids |= {e["id"] for e in level["top"]}
    for entry in content.get("influence", []):
        ids |= {entry["test_id"]} | {n["id"] for kind in ("proponent", "opponent") for n in entry[kind]}
    decided = (content.get("changes") or {}).get("decisions") or {}
    return ids | {r["id"] for r in decided.get("rows", [])}
