"""Per-example disagreement between a dense model and its compressed copy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.scoring.signals import softmax


def prediction_flips(ids: np.ndarray, dense_logits: np.ndarray, compressed_logits: np.ndarray, tag: str) -> pd.DataFrame:
    """Compare (N, K) logits of the dense and compressed models.

    Columns: ``pred_<tag>`` (compressed prediction), ``is_flip_<tag>`` (prediction changed) and
    ``flip_score_<tag>`` = total-variation distance 0.5 * ||p_dense - p_compressed||_1 in [0, 1].
    """
    distance = 0.5 * np.abs(softmax(dense_logits) - softmax(compressed_logits)).sum(axis=1)
    compressed_pred = compressed_logits.argmax(axis=1)
    return pd.DataFrame(
        {
            "id": ids,
            f"pred_{tag}": compressed_pred,
            f"is_flip_{tag}": compressed_pred != dense_logits.argmax(axis=1),
            f"flip_score_{tag}": distance,
        }
    )
