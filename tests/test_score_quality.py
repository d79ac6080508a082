"""Quality goals of issue 5, measured on digits with planted problems (slow: trains two models).

Same code path as benchmarks/bench_quality.py (which also runs the cleanlab baseline and writes
benchmarks/results/quality.json).
"""

from __future__ import annotations

import importlib.util

import pytest

from exemplar.scoring.config import ScoreConfig
from exemplar.training.config import TrainConfig
from flows._env import PROJECT_ROOT


def bench_quality():
    spec = importlib.util.spec_from_file_location("bench_quality", PROJECT_ROOT / "benchmarks" / "bench_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mislabelled_examples_rank_first():
    metrics = bench_quality().run_scenario("label_noise", False, ScoreConfig(), TrainConfig())["metrics"]
    for name in ("self_influence_score", "audit_score"):
        assert metrics[name]["auroc"] >= 0.99, (name, metrics[name])
        assert metrics[name]["average_precision"] >= 0.95, (name, metrics[name])


@pytest.mark.slow
def test_atypical_examples_rank_first_in_the_same_queue():
    metrics = bench_quality().run_scenario("atypical", False, ScoreConfig(), TrainConfig())["metrics"]
    assert metrics["audit_score"]["auroc"] >= 0.97, metrics["audit_score"]
    assert metrics["input_outlier_score"]["auroc"] >= 0.97, metrics["input_outlier_score"]
    assert metrics["outlier_score"]["auroc"] >= 0.9, metrics["outlier_score"]
