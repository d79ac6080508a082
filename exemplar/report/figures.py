"""The report's pictures: matplotlib figures rendered to inline PNG data URIs (no files, no pyplot
state, so safe from any thread). Each returns a ``data:image/png;base64,...`` string, or None when
there is nothing to draw."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

DPI = 90
TRAIN, TEST, FLAG = "#3b6ea8", "#e08a2c", "#b00020"


def to_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _axes(width: float = 5.0, height: float = 2.6):
    figure = Figure(figsize=(width, height))
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def histogram(values: pd.Series, split: pd.Series, label: str) -> str | None:
    """Distribution of one signal, training and test rows stacked (NaN left out)."""
    finite = values.replace([np.inf, -np.inf], np.nan).notna()
    if finite.sum() < 2:
        return None
    figure, axes = _axes()
    groups = [values[finite & (split == s)].to_numpy() for s in ("train", "test")]
    names = [n for n, g in zip(("train", "test"), groups) if len(g)]
    axes.hist([g for g in groups if len(g)], bins=40, stacked=True, color=[c for c, g in zip((TRAIN, TEST), groups) if len(g)], label=names)
    axes.set_xlabel(label)
    axes.set_ylabel("examples")
    axes.legend(frameon=False, fontsize=8, loc="upper right")
    return to_uri(figure)


def data_map(confidence: np.ndarray, variability: np.ndarray, flagged: np.ndarray) -> str | None:
    """Swayamdipta et al. (2020): mean probability of the given label (y) against its std over epochs (x)."""
    if len(confidence) < 2:
        return None
    figure, axes = _axes(5.0, 3.6)
    axes.scatter(variability[~flagged], confidence[~flagged], s=4, alpha=0.4, color=TRAIN, label="training rows", rasterized=True)
    axes.scatter(variability[flagged], confidence[flagged], s=14, color=FLAG, label="in the review queue")
    axes.set_xlabel("variability (std of p(given label) over epochs)")
    axes.set_ylabel("confidence (mean p(given label))")
    axes.legend(frameon=False, fontsize=8, loc="lower right")
    return to_uri(figure)


def training_curves(curves: pd.DataFrame) -> str | None:
    """Training accuracy and mean p(given label) per epoch, one line per seed (`curves`: seed, epoch,
    accuracy, confidence)."""
    if curves.empty:
        return None
    figure, axes = _axes(5.0, 2.8)
    for seed, rows in curves.groupby("seed"):
        axes.plot(rows["epoch"], rows["accuracy"], color=TRAIN, alpha=0.8, label="accuracy" if seed == curves["seed"].min() else None)
        axes.plot(rows["epoch"], rows["confidence"], color=TEST, alpha=0.8, linestyle="--", label="mean p(given label)" if seed == curves["seed"].min() else None)
    axes.set_xlabel("epoch")
    axes.set_ylim(0, 1.02)
    axes.legend(frameon=False, fontsize=8, loc="upper right")
    return to_uri(figure)


def class_accuracy(table: pd.DataFrame) -> str | None:
    """Grouped bars: test accuracy per class, dense and each compressed level (`table`: class x level)."""
    if table.empty:
        return None
    figure, axes = _axes(max(5.0, 0.45 * len(table) * max(1, len(table.columns)) ** 0.5), 2.8)
    width = 0.8 / len(table.columns)
    for i, column in enumerate(table.columns):
        axes.bar(np.arange(len(table)) + i * width, table[column].to_numpy(dtype=float), width, label=str(column))
    axes.set_xticks(np.arange(len(table)) + 0.4 - width / 2, [str(c)[:12] for c in table.index], rotation=45 if len(table) > 12 else 0, fontsize=8)
    axes.set_ylabel("test accuracy")
    axes.set_ylim(0, 1.02)
    axes.legend(frameon=False, fontsize=7, ncol=min(7, len(table.columns)), loc="upper center", bbox_to_anchor=(0.5, -0.12 if len(table) <= 12 else -0.3))
    return to_uri(figure)


def prune_curve(curve: pd.DataFrame) -> str | None:
    """Test accuracy against the fraction of training data kept, one line per (score, direction),
    mean over seeds (`curve`: score, direction, fraction_kept, seed, test_accuracy)."""
    if curve.empty:
        return None
    figure, axes = _axes(5.0, 3.0)
    mean = curve.groupby(["score", "direction", "fraction_kept"], as_index=False)["test_accuracy"].mean()
    for (score, direction), rows in mean.groupby(["score", "direction"]):
        rows = rows.sort_values("fraction_kept")
        axes.plot(rows["fraction_kept"], rows["test_accuracy"], marker="o", markersize=3, label=f"{score} ({direction})")
    axes.set_xlabel("fraction of training data kept")
    axes.set_ylabel("test accuracy")
    axes.legend(frameon=False, fontsize=7)
    return to_uri(figure)


def cie_levels(counts: dict[str, int]) -> str | None:
    """Bars: how many CIEs each compression level finds."""
    if not counts:
        return None
    figure, axes = _axes(5.0, 2.4)
    axes.bar(list(counts), list(counts.values()), color=FLAG)
    axes.set_ylabel("CIE examples")
    axes.tick_params(axis="x", labelsize=8)
    return to_uri(figure)


def report_figures(scores: pd.DataFrame, content: dict, curves: pd.DataFrame, accuracy: pd.DataFrame, prune: pd.DataFrame | None) -> dict[str, str]:
    """Every picture of the report by key (``training``, ``class_accuracy``, ``prune_curve``,
    ``data_map``, ``cie_levels``, ``signal:<column>``); missing inputs give no key."""
    figures = {
        "training": training_curves(curves),
        "class_accuracy": class_accuracy(accuracy),
        "prune_curve": None if prune is None else prune_curve(prune),
        "cie_levels": cie_levels({level["level"]: level["count"] for level in content["cie_levels"]}),
    }
    train = scores[scores["split"] == "train"]
    if {"low_confidence_score", "variability_score"} <= set(scores.columns) and len(train):
        queued = train["id"].isin({r["id"] for r in content["review_queue"]}).to_numpy()
        figures["data_map"] = data_map(1.0 - train["low_confidence_score"].to_numpy(float), train["variability_score"].to_numpy(float), queued)
    for column in content["signals"]:
        figures[f"signal:{column}"] = histogram(scores[column].astype(float), scores["split"], column)
    return {key: uri for key, uri in figures.items() if uri}
