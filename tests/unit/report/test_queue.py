"""Queue numbers a person reads: the audit percentile and the prediction's confidence, hand-derived."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.report.queue import percentiles, prediction_confidence


def test_percentile_counts_rows_at_or_above_within_the_split():
    values = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 5.0])
    groups = pd.Series(["train"] * 4 + ["test"] * 2)
    assert percentiles(values, groups).tolist() == [0.0, 25.0, 50.0, 75.0, 0.0, 0.0]


def test_confidence_of_the_prediction_from_loss_or_confidently_wrong():
    scores = pd.DataFrame({"pred": [0, 1], "label": [0, 0], "loss_score": [np.log(2.0), 3.0], "confidently_wrong_score": [0.0, 0.7]})
    assert np.allclose(prediction_confidence(scores), [0.5, 0.7])
    assert prediction_confidence(scores.assign(pred_confidence=[0.9, 0.8])).tolist() == [0.9, 0.8]
