"""The review queue's rows: who, what the model says, how high the audit score is, and why."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from exemplar.report.why import evidence, explain

FEATURES_SHOWN = 8  # feature values shown per table row


def finite(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def review_rank(scores: pd.DataFrame) -> pd.Series:
    """(N,) each row's rank in its own queue: ``audit_rank`` for training rows and ``audit_rank_test``
    for test rows when the fusion ranks the splits separately, else the one ``audit_rank``."""
    if "audit_rank_test" in scores:
        return scores["audit_rank"].fillna(scores["audit_rank_test"])
    return scores["audit_rank"]


def percentiles(values: pd.Series, groups: pd.Series) -> pd.Series:
    """100 minus the share of rows of the same group (in %) scoring at or above each row: the highest
    of 1,000 rows gets 99.9 ('top 0.1%'), as the "why" evidence counts."""
    return 100.0 - 100.0 * values.groupby(groups.to_numpy()).rank(method="max", ascending=False, pct=True)


def prediction_confidence(scores: pd.DataFrame) -> pd.Series:
    """(N,) probability of the predicted class, from a ``pred_confidence`` column when scoring wrote
    one, else derived from the score columns: exp(-loss) when the prediction is the given label,
    ``confidently_wrong_score`` when it is not (NaN when neither is present)."""
    if "pred_confidence" in scores:
        return scores["pred_confidence"].astype(float)
    right = scores["pred"].to_numpy() == scores["label"].to_numpy()
    loss = scores["loss_score"].astype(float) if "loss_score" in scores else pd.Series(np.nan, index=scores.index)
    wrong = scores["confidently_wrong_score"].astype(float) if "confidently_wrong_score" in scores else pd.Series(np.nan, index=scores.index)
    return pd.Series(np.where(right, np.exp(-loss.to_numpy()), wrong.to_numpy()), index=scores.index)


def feature_values(features: pd.DataFrame | None, ids: list[str]) -> dict[str, dict[str, float | str | bool | None]]:
    """{id: {feature: value}} for the first :data:`FEATURES_SHOWN` features (tables only), as given:
    numbers as floats, text and booleans as they are, a missing cell as None."""
    if features is None or features.empty:
        return {}
    shown = features.set_index("id").reindex(ids).iloc[:, :FEATURES_SHOWN]
    return {row_id: {k: shown_value(v) for k, v in values.items()} for row_id, values in shown.iterrows()}


def shown_value(value: object) -> float | str | bool | None:
    """One stored cell for the page: text and booleans kept (a category is what the reviewer must see),
    numbers through :func:`finite`, missing cells (None, NaN, pandas' NA) None."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return value
    return finite(value)


def atypical_order(scores: pd.DataFrame) -> pd.Series:
    """(N,) each row's ``atypical_rank`` within its own split (all NaN when the scores have no atypical
    signal)."""
    return scores["atypical_rank"] if "atypical_rank" in scores else pd.Series(np.nan, index=scores.index)


QUEUES = {"audit": "_audit", "atypical": "_atypical"}  # review order -> its rank column in queue_rows


def queue_rows(scores: pd.DataFrame, signals: list[str], size: int, top_percent: float,
               features: pd.DataFrame | None) -> dict[str, list[dict]]:
    """Per review order in :data:`QUEUES` (audit: :func:`review_rank`; atypical: :func:`atypical_order`):
    the first `size` training rows and the first `size` test rows in that order, as dicts (the union,
    ordered by that rank), leaving out rows the keep mask drops (duplicates, rows a reviewer removed);
    `features` holds ``id`` plus feature columns for tables. The evidence, percentiles and confidences
    are computed once for both orders."""
    z = evidence(scores, signals) if signals else pd.DataFrame(index=scores.index)
    masked = ~scores["keep"].fillna(True).astype(bool) if "keep" in scores else pd.Series(False, index=scores.index)
    scores = scores[~masked.to_numpy()].assign(_pct=percentiles(scores["audit_score"], scores["split"]), _conf=prediction_confidence(scores),
                                               _audit=review_rank(scores), _atypical=atypical_order(scores))
    out = {}
    for queue, column in QUEUES.items():
        ranked = scores[scores[column].notna()]
        chosen = pd.concat([ranked[ranked["split"] == s].nsmallest(size, column) for s in ("train", "test")]).sort_values([column, "split"], ascending=[True, False])
        why = explain(z.loc[chosen.index], top_percent) if len(z.columns) else [[] for _ in range(len(chosen))]
        values = feature_values(features, chosen["id"].astype(str).tolist())
        out[queue] = [_row(record, reasons, values.get(str(record["id"]), {})) for (_, record), reasons in zip(chosen.iterrows(), why)]
    return out


def _row(record: pd.Series, why: list[dict], features: dict) -> dict:
    keep = record.get("keep")
    return {
        "id": str(record["id"]), "split": str(record["split"]),
        "label": int(record["label"]), "label_name": str(record["label_name"]),
        "pred": int(record["pred"]), "pred_name": str(record["pred_name"]),
        "confidence": finite(record["_conf"]),
        "audit_rank": int(record["_audit"]), "audit_score": finite(record["audit_score"]),
        "atypical_rank": None if finite(record["_atypical"]) is None else int(record["_atypical"]),
        "audit_percentile": round(float(record["_pct"]), 2),
        "why": why, "reason": why[0]["signal"] if why else "",
        "keep": True if keep is None or pd.isna(keep) else bool(keep),
        "drop_reason": str(record.get("drop_reason") or ""),
        "features": features,
    }
