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
        # floors with a margin under the measured figures (docs/scoring.md; fifth round, seeds 0-4, held out,
        # this test runs seed 0): held-out AP at least 3x the base rate (measured: 3.6x at worst on table_triage,
        # 4.6x on its seed 0; 5.2-26x elsewhere), AUROC >= 0.75 (measured >= 0.79 on seed 0). The slips tables
        # (atypical rows in a real table, where the label-led queue is known to be weak: docs/scoring.md)
        # measured AP 1.9-4.6x (breast cancer; 3.1x on seed 0) and 2.8-5.3x (wine, 7 positives): their AP floor
        # is 2x. Loans entry errors (sign errors and swapped fields hide inside the columns' ranges) measured
        # AUROC 0.70 at worst and AP 8.0-11.1x: AUROC floor 0.6.
        floor = 2 if name in ("breast_cancer_slips", "wine_slips") else 3
        assert held["average_precision"] >= floor * base_rate, (name, held, base_rate)
        assert held["auroc"] >= (0.6 if name == "table_loans_entry_errors" else 0.75), (name, held)
        # never far below cleanlab on the same out-of-sample learner (measured on seeds 0-4: at worst -0.087, one
        # seed of penguins; on seed 0 -0.035, penguins)
        assert held["average_precision"] >= body["anchors_ap"]["cleanlab_oos_learner"] - 0.1, (name, held, body["anchors_ap"])
