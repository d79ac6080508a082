"""The full audit-quality suite (slow: one real pipeline run per scenario, about 1-3 minutes each on
2 cores): benchmarks/bench_quality.py on every scenario with seed 0, then the leave-one-scenario-out
selection over the saved tables. The fast floor is tests/test_audit_quality.py.

    .venv/bin/python -m pytest -m slow tests/test_score_quality.py
"""

from __future__ import annotations

import importlib.util

import pytest

from flows._env import PROJECT_ROOT


def bench_quality():
    spec = importlib.util.spec_from_file_location("bench_quality", PROJECT_ROOT / "benchmarks" / "bench_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_suite_held_out_audit_quality(prefect_server, tmp_path):
    bench = bench_quality()
    tables = tmp_path / "tables"
    bench.main(["run", "--tables", str(tables), "--seeds", "0"])
    report = bench.main(["analyse", "--tables", str(tables), "--out", str(tmp_path / "quality.json")])
    assert set(report["scenarios"]) == set(bench.SCENARIOS)
    for name, body in report["scenarios"].items():
        held, run = body["held_out"], report["runs"][name][0]
        base_rate = run["positives"] / run["train_rows"]
        if bench.KINDS[name] == "label":
            # wrong labels: the fused queue's job. Floors with a margin under the measured figures (fifth
            # round, docs/scoring.md): held-out AP at least 3x the base rate (seeds 0-4: 3.6x at worst on
            # table_triage; this test's seed-0-only selection: 4.6x), AUROC >= 0.75 (seed 0: >= 0.82), never
            # far below cleanlab on the same out-of-sample learner (seeds 0-4: -0.087 at worst, one seed of
            # penguins; seed 0: -0.04).
            assert held["average_precision"] >= 3 * base_rate, (name, held, base_rate)
            assert held["auroc"] >= 0.75, (name, held)
            assert held["average_precision"] >= body["anchors_ap"]["cleanlab_oos_learner"] - 0.1, (name, held, body["anchors_ap"])
            continue
        # atypical inputs with right labels: the report's atypical order is the product's answer (the
        # label-led fused queue is known to be weak there: docs/scoring.md). Its AP at least 5x the base rate
        # (measured on seed 0: 8.8x on the entry errors, 13-33x elsewhere); the fused queue still above
        # chance: AP >= 1.5x the base rate, AUROC >= 0.55. With seed 0 alone the selection can pick a
        # candidate that is weak on these rows (the tail-fitted null level: breast-cancer slips 1.8x / AUROC
        # 0.62, entry errors AUROC 0.60), which the five-seed selection does not (docs/scoring.md).
        assert body["atypical_order_ap"] >= 5 * base_rate, (name, body["atypical_order_ap"], base_rate)
        assert held["average_precision"] >= 1.5 * base_rate, (name, held, base_rate)
        assert held["auroc"] >= 0.55, (name, held)
