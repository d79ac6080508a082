"""The quality suite's scenario builders (benchmarks/bench_quality.py ``BUILDERS``: the suite and the reserved
confirmation sets): each returns a table the pipeline can ingest and a planted-problem mask that only marks
training rows, the same for the same seed. The ``*_plausible`` builders train a clean model to choose the flips
(up to 14 s each), so one small one stands for them here; the slow suite runs them all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.test_score_quality import bench_quality

BENCH = bench_quality()
FAST = sorted(name for name in BENCH.BUILDERS if not name.endswith("_plausible")) + ["tips_plausible"]


@pytest.mark.parametrize("name", FAST)
def test_a_scenario_plants_problems_on_training_rows_only_and_repeats_for_a_seed(name):
    frame, truth = BENCH.BUILDERS[name](1)
    assert isinstance(frame, pd.DataFrame) and {"id", "label", "split"} <= set(frame.columns)
    assert frame["id"].is_unique and set(frame["split"]) == {"train", "test"}
    truth = np.asarray(truth)
    assert truth.dtype == bool and truth.shape == (len(frame),)
    training = (frame["split"] == "train").to_numpy()
    assert 0 < truth.sum() < training.sum(), f"{name}: {truth.sum()} planted of {training.sum()} training rows"
    assert not (truth & ~training).any(), f"{name}: planted rows outside the training split"
    again, truth_again = BENCH.BUILDERS[name](1)
    assert again["id"].tolist() == frame["id"].tolist() and np.array_equal(np.asarray(truth_again), truth)
    assert again["label"].tolist() == frame["label"].tolist()


def test_every_suite_and_reserved_scenario_has_a_builder_and_a_kind():
    assert set(BENCH.SCENARIOS) <= set(BENCH.BUILDERS) and set(BENCH.CONFIRMATION_SCENARIOS) <= set(BENCH.BUILDERS)
    assert not set(BENCH.SCENARIOS) & set(BENCH.CONFIRMATION_SCENARIOS), "a reserved set is read only once it joins"
    # KINDS is derived from BUILDERS; a misspelt ATYPICAL_SCENARIOS name would silently count its scenario as "label"
    assert set(BENCH.ATYPICAL_SCENARIOS) <= set(BENCH.BUILDERS) and set(BENCH.KINDS.values()) == {"label", "atypical"}
