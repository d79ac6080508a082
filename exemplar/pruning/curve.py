"""The pruning curve: which (score, direction, fraction kept, seed) points to train, and the table,
summary and plot made from their test accuracies.

Every fraction below 1.0 is one point per score line and seed; fraction 1.0 (no pruning) is the same
training set for every line, so it is trained once per seed and shared by every line (its rows carry
``is_shared_full_run``). ``random`` has no direction; ``audit`` uses ``audit_directions`` (it ranks
suspicion, so ``drop_top`` is its natural use); every other score runs each of ``directions``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from exemplar.pruning.config import CurveConfig, score_name

FULL = "full"  # score name of the shared no-pruning point
COLUMNS = ["score", "direction", "fraction_kept", "seed", "test_accuracy", "n_train", "test_loss", "train_seconds", "is_shared_full_run", "point"]


@dataclass(frozen=True)
class CurvePoint:
    score: str  # canonical score name, or "full" for fraction 1.0
    direction: str  # hard | easy | drop_top | random | none
    fraction_kept: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.score}-{self.direction}-f{self.fraction_kept:g}-s{self.seed}"


def point_epochs(epochs: int, full_rows: int, rows: int, batch_size: int, budget: str) -> int:
    """Epochs for a point training on `rows` of `full_rows`: `epochs` (budget "epochs"), or as many as
    give the full-data point's optimizer steps, ``round(epochs * ceil(full/B) / ceil(rows/B))`` (budget "steps")."""
    if budget == "epochs" or rows >= full_rows:
        return epochs
    return max(1, int(round(epochs * math.ceil(full_rows / batch_size) / math.ceil(rows / batch_size))))


def score_lines(config: CurveConfig) -> list[tuple[str, str]]:
    """(score, direction) of every line of the plot, in the configured order."""
    lines = []
    for raw in config.scores:
        name = score_name(raw)
        directions = ["random"] if name == "random" else config.audit_directions if name == "audit" else config.directions
        lines += [(name, d) for d in directions]
    return lines


def curve_points(config: CurveConfig) -> list[CurvePoint]:
    """Every point to train: one shared full-data point per seed, then each line at each fraction < 1."""
    points = [CurvePoint(FULL, "none", 1.0, seed) for seed in config.seeds] if 1.0 in config.fractions else []
    for fraction in sorted({f for f in config.fractions if f < 1.0}, reverse=True):
        points += [CurvePoint(score, direction, fraction, seed) for score, direction in score_lines(config) for seed in config.seeds]
    return points


def curve_table(records: list[dict], config: CurveConfig) -> pd.DataFrame:
    """One row per (line, fraction, seed): `records` are the trained points (:class:`CurvePoint` fields
    plus ``test_accuracy``, ``n_train``, ...); each shared full-data record is repeated for every line."""
    rows = []
    for record in records:
        if record["score"] != FULL:
            rows.append({**record, "is_shared_full_run": False, "point": CurvePoint(**_point_fields(record)).name})
            continue
        point = CurvePoint(**_point_fields(record)).name
        rows += [{**record, "score": s, "direction": d, "is_shared_full_run": True, "point": point} for s, d in score_lines(config)]
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in COLUMNS]
    return table[COLUMNS + extra].sort_values(["score", "direction", "fraction_kept", "seed"], ascending=[True, True, False, True], ignore_index=True)


def _point_fields(record: dict) -> dict:
    return {k: record[k] for k in asdict(CurvePoint("", "", 0.0, 0))}


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof=1; 0 for one seed), min, max and seed count of test accuracy per
    (score, direction, fraction_kept)."""
    grouped = table.groupby(["score", "direction", "fraction_kept"])["test_accuracy"]
    out = grouped.agg(mean="mean", std="std", min="min", max="max", seeds="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def compare_at(summary: pd.DataFrame, fraction: float) -> dict:
    """At `fraction` kept: random's mean and spread, the best score-based line, and each line's gap to random."""
    at = summary[np.isclose(summary["fraction_kept"], fraction)]
    random = at[at["score"] == "random"]
    scored = at[at["score"] != "random"].sort_values("mean", ascending=False)
    if random.empty or scored.empty:
        return {}
    base = random.iloc[0]
    lines = [
        {"score": r.score, "direction": r.direction, "mean": r.mean, "std": r.std, "min": r.min, "max": r.max, "minus_random": r.mean - base["mean"]}
        for r in scored.itertuples()
    ]
    return {"fraction_kept": fraction, "random": {"mean": base["mean"], "std": base["std"], "min": base["min"], "max": base["max"]}, "best": lines[0], "lines": lines}


def plot_curve(table: pd.DataFrame, paths: list) -> None:
    """Test accuracy (mean over seeds, band = min..max over seeds) against fraction kept, one line per
    (score, direction): one colour per score, solid = keep hard, dotted = keep easy, dash-dot = drop_top;
    random is the dashed black line. Saved to every path in `paths` (.svg, .png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(table)
    scores = [s for s in sorted(summary["score"].unique()) if s != "random"]
    colours = {score: plt.get_cmap("tab10")(i % 10) for i, score in enumerate(scores)} | {"random": "black"}
    dashes = {"hard": "-", "easy": ":", "drop_top": "-.", "random": "--"}
    figure, axes = plt.subplots(figsize=(8, 5))
    for (score, direction), line in summary.groupby(["score", "direction"], sort=True):
        line = line.sort_values("fraction_kept")
        label = score if score == "random" else f"{score} ({direction})"
        style = {"color": colours[score], "linestyle": dashes.get(direction, "-")}
        axes.plot(line["fraction_kept"], line["mean"], marker="o", markersize=3, label=label, **style)
        axes.fill_between(line["fraction_kept"], line["min"], line["max"], color=colours[score], alpha=0.10, linewidth=0)
    axes.set_xlabel("fraction of training rows kept")
    axes.set_ylabel("test accuracy (mean over seeds; band: min..max)")
    axes.invert_xaxis()
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2, loc="lower left")
    axes.set_title(f"Pruning curve ({int(table['seed'].nunique())} seed(s) per point)")
    figure.tight_layout()
    for path in paths:
        figure.savefig(path)
    plt.close(figure)
