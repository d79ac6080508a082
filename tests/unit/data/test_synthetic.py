"""The generated tables have what they promise (seeded, mixed types, missing values, imbalance), and
planted flips move only training labels, each to an adjacent class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exemplar.data.synthetic import CLASS_ORDER, TABLES, plant_adjacent_flips


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_are_seeded_mixed_gappy_and_imbalanced(name):
    table = TABLES[name](rows=800, seed=3)
    pd.testing.assert_frame_equal(table, TABLES[name](rows=800, seed=3))
    assert not table.equals(TABLES[name](rows=800, seed=4))
    assert table["id"].is_unique and set(table["split"]) == {"train", "test"}
    assert set(table["label"]) == set(CLASS_ORDER[name])
    shares = table["label"].value_counts(normalize=True)
    assert shares.max() / shares.min() >= 4
    features = table.drop(columns=["id", "label", "split"])
    text = [c for c in features if features[c].map(lambda v: isinstance(v, str)).any()]
    assert len(text) >= 2 and max(features[c].nunique() for c in text) > 50  # one high-cardinality column
    assert any(features[c].map(lambda v: isinstance(v, (bool, np.bool_))).all() or features[c].dropna().map(type).eq(bool).all() for c in features)
    numeric = features.select_dtypes("number")
    spread = numeric.abs().median()
    assert spread.max() / spread[spread > 0].min() > 100  # scales differ by orders of magnitude
    assert features.isna().any(axis=1).mean() > 0.1


@pytest.mark.parametrize("name", sorted(TABLES))
def test_flips_move_training_labels_to_an_adjacent_class(name):
    table = TABLES[name](rows=600, seed=0)
    noisy, ids = plant_adjacent_flips(table, fraction=0.1, seed=1, order=CLASS_ORDER[name])
    changed = noisy["label"] != table["label"]
    train = table["split"] == "train"
    assert sorted(noisy.loc[changed, "id"]) == ids and len(ids) == round(0.1 * train.sum())
    assert not (changed & ~train).any()
    position = {c: k for k, c in enumerate(CLASS_ORDER[name])}
    steps = (noisy.loc[changed, "label"].map(position) - table.loc[changed, "label"].map(position)).abs()
    assert (steps == 1).all()
    assert table.drop(columns="label").equals(noisy.drop(columns="label"))
