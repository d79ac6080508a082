"""The full audit-quality suite (slow: one real pipeline run per scenario, 107 of them, about 42 minutes
on 2 cores): benchmarks/bench_quality.py on every scenario with seed 0, then the leave-one-scenario-out
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
    report = bench.main(["analyse", "--tables", str(tables), "--out", str(tmp_path / "quality.json"), "--jobs", "2"])
    assert set(report["scenarios"]) == set(bench.SCENARIOS)
    for name, body in report["scenarios"].items():
        held, run = body["held_out"], report["runs"][name][0]
        base_rate = run["positives"] / run["train_rows"]
        if bench.KINDS[name] == "label":
            # wrong labels: the fused queue's job. Floors with a margin under the measured figures (sixteenth
            # round, 77 scenarios, docs/scoring.md; this test's seed-0-only selection, measured on the suite's
            # seed-0 tables with analyse): not far below cleanlab on the same out-of-sample learner (the held-out
            # queue is below it on some real tables, seed 0: wine_sparse_rows -0.244, co2_quarter -0.196,
            # seattle_weather -0.179, gapminder_continent -0.115; on the first two the seed-0 selection picks a
            # recipe the shipped default beats by 0.12-0.16 there), so the floor is -0.30 (-0.25 until the
            # fifteenth round, whose worst was -0.185); the class-centred fusion of rounds 1-5 is at -0.41 there.
            anchor = body["anchors_ap"]["cleanlab_oos_learner"]
            assert held["average_precision"] >= anchor - 0.30, (name, held, body["anchors_ap"])
            if anchor < 3 * base_rate:
                # labels the features barely tell apart: cleanlab itself is under 3x the base rate (seed 0:
                # barley_site 1.8x, anes96_party 2.0x, anes96_educ 1.7x, fair_religious 1.8x, diabetes_sex 1.9x;
                # the fused queue 2.4x, 2.1x, 2.1x, 1.5x and 2.1x, AUROC 0.54, 0.72, 0.59, 0.58 and 0.72).
                # Only the anchor floor above, and an AP better than chance.
                assert held["average_precision"] >= 1.2 * base_rate, (name, held, base_rate)
                continue
            # elsewhere: held-out AP at least 2x the base rate (sixteenth round, seed 0: 2.1x on co2_quarter, where
            # the shipped default has 3.4x and the anchor 4.1x; 3.3x on anes96_heavy, whose 25% base rate makes
            # 4x a perfect queue, 3.4x on randhie_health; 2.5x until the fifteenth round) and AUROC >= 0.7
            # (seed 0: 0.724 on co2_quarter, 0.779 on diabetes_progression, 0.84 and above elsewhere)
            assert held["average_precision"] >= 2.0 * base_rate, (name, held, base_rate)
            assert held["auroc"] >= 0.7, (name, held)
            continue
        # atypical inputs with right labels: the report's atypical order is the product's answer (the
        # label-led fused queue is known to be weak there: docs/scoring.md). Its AP at least 5x the base rate
        # (measured on seed 0, sixteenth round: 8.9x on the entry errors, 9.7x on the gapminder slips, 10.8x
        # on the randhie slips, 11.7x and more elsewhere); the fused queue better than chance in AP, >= 1.2x the
        # base rate (seed 0: 2.5x on the star98 slips at worst; the shipped default over seeds 0-4: 3.0x at
        # worst, wine slips seed 0), and its AUROC not far below chance, >= 0.4: the label evidence sits at its
        # ordinary level on rows whose labels are right (seed 0: 0.595 on the star98 slips, 0.609 on the entry
        # errors, 0.664 on the randhie slips; the shipped default over seeds 0-4: 0.634 at worst; 0.45-0.50 on
        # the fair slips with the thirteenth round's default).
        assert body["atypical_order_ap"] >= 5 * base_rate, (name, body["atypical_order_ap"], base_rate)
        assert held["average_precision"] >= 1.2 * base_rate, (name, held, base_rate)
        assert held["auroc"] >= 0.4, (name, held)
