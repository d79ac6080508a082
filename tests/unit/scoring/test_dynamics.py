import numpy as np
import pandas as pd

from exemplar.scoring.dynamics import average_seeds, data_map, dynamics_scores, forgetting_events


def long_table(correct: dict[str, list[bool]], probability: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"id": i, "epoch": e + 1, "correct": c, "label_probability": probability[i][e]}
        for i, flags in correct.items() for e, c in enumerate(flags)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


def test_forgetting_counts_correct_to_incorrect_transitions():
    table = long_table(
        {"a": [True, False, True, False], "b": [False, True, True, True], "c": [False, False, False, False]},
        {k: [0.5] * 4 for k in "abc"},
    )
    events = forgetting_events(table)
    assert events.to_dict() == {"a": 2.0, "b": 0.0, "c": 4.0}  # never learned -> number of epochs


def test_data_map_confidence_and_variability():
    table = long_table({"a": [True] * 3, "b": [True] * 3}, {"a": [0.2, 0.4, 0.9], "b": [0.5, 0.5, 0.5]})
    frame = data_map(table)
    np.testing.assert_allclose(frame.loc["a", "low_confidence_score"], 1 - 0.5)
    np.testing.assert_allclose(frame.loc["a", "variability_score"], np.std([0.2, 0.4, 0.9]))
    assert frame.loc["b", "variability_score"] == 0.0


def test_seeds_are_averaged_per_id():
    one = dynamics_scores(long_table({"a": [True, False], "b": [True, True]}, {"a": [0.4, 0.2], "b": [0.9, 0.9]}))
    two = dynamics_scores(long_table({"a": [True, True], "b": [True, True]}, {"a": [0.6, 0.8], "b": [0.7, 0.7]}))
    mean = average_seeds([one, two])
    assert mean.loc["a", "forgetting_score"] == 0.5
    np.testing.assert_allclose(mean.loc["b", "low_confidence_score"], 0.2)
