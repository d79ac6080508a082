"""The "why" column: which one to three signals put a row high in the review queue, in words.

Coupling: this reads only the ``<name>_score`` columns of ``scores.parquet`` and each column's
declared family and direction -- ``exemplar.scoring.registry.declared(column)`` (``.family``,
``.direction``: +1 higher is more suspicious, -1 lower is, 0 not fused) where the registry declares
them, else the older ``exemplar.scoring.fusion.FAMILIES`` (column -> family, direction +1); a column
neither declares is a family of its own. It never reads the fusion's arithmetic, so it keeps working
when the fusion changes (it was written while the fusion was being reworked). Columns with direction
0 are not named (the fusion does not use them).

The evidence is scale-free: for each column, the share of rows (of the same split) scoring at or
beyond the row in the suspicious direction ("top 0.4% on loss"); robust z-scores were tried first
and read badly (a loss z of 8,000 where most losses are near 0). A row's reasons are its most
extreme column per family, most extreme first, those within the top ``top_percent`` % (at most
three; the strongest is always named, so every row has a reason).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.scoring import fusion, registry

PHRASES = {
    "loss": "high loss on its given label",
    "margin": "the model prefers another class",
    "el2n": "hard to fit early in training (EL2N)",
    "grand": "large gradient early in training (GraNd)",
    "confidently_wrong": "confidently predicted as another class",
    "self_influence": "pulls strongly on its own prediction (self-influence)",
    "vog": "unstable input gradients over training (VoG)",
    "forgetting": "learned, then forgotten, during training",
    "low_confidence": "low confidence in its label during training",
    "variability": "confidence in its label swung between epochs",
    "outlier": "far from other training examples (embedding)",
    "input_outlier": "unusual input compared to the training data",
    "cie": "compressed models disagree with the dense ones (CIE)",
}
MAX_REASONS = 3


def signal_name(column: str) -> str:
    """``margin_score`` -> ``margin``; ``cie_score_p90`` -> ``cie_p90``."""
    return column.replace("_score", "", 1) if "_score" in column else column


def phrase(column: str) -> str:
    """Plain words for a score column (unknown names: '<name> unusually high')."""
    name = signal_name(column)
    base = name.split("_p")[0] if name.startswith("cie") else name
    words = PHRASES.get(name) or PHRASES.get(base)
    return words or f"{name.replace('_', ' ')} unusually high"


def declaration(column: str) -> tuple[str, int]:
    """(family, direction) of a score column, as the scoring registry (or the older fusion) declares it."""
    declared = getattr(registry, "declared", None)
    if declared is not None:
        signal = declared(column)
        return str(signal.family), int(signal.direction)
    return getattr(fusion, "FAMILIES", {}).get(column, signal_name(column)), 1


def family_of(column: str) -> str:
    """The family declared for `column` (a column nobody declares is its own family)."""
    return declaration(column)[0]


def evidence(scores: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """(N, C) per-signal normalised evidence: the share of rows (in %) of the row's split scoring at or
    beyond it in the column's suspicious direction -- 0.5 means 'top 0.5% on this signal'. NaN stays
    NaN; columns declared with direction 0 are left out."""
    used = [c for c in columns if declaration(c)[1] != 0]
    values = scores[used].astype(np.float64) * [declaration(c)[1] for c in used]
    groups = scores["split"] if "split" in scores else pd.Series("all", index=scores.index)
    return 100.0 * values.groupby(groups.to_numpy()).rank(pct=True, method="max", ascending=False)


def reasons(top: pd.Series, top_percent: float) -> list[tuple[str, float]]:
    """[(column, top %)] for one row: its strongest column per family, most extreme first, those in
    the top `top_percent` % (at most three; the strongest is always named)."""
    top = top.dropna()
    if top.empty:
        return []
    best = top.groupby([family_of(c) for c in top.index]).idxmin()
    order = {c: i for i, c in enumerate(top.index)}  # ties: the signals' own order
    ranked = sorted(((c, float(top[c])) for c in best), key=lambda item: (item[1], order[item[0]]))
    named = [item for item in ranked if item[1] <= top_percent][:MAX_REASONS]
    return named or ranked[:1]


def explain(top: pd.DataFrame, top_percent: float) -> list[list[dict]]:
    """Per row of `top` (rows of :func:`evidence`): [{"signal", "family", "top_percent", "text"}]."""
    return [
        [{"signal": signal_name(c), "family": family_of(c), "top_percent": round(v, 2), "text": phrase(c)} for c, v in reasons(row, top_percent)]
        for _, row in top.iterrows()
    ]
