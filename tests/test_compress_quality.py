"""Hooker et al.'s effect on digits with the default settings, out of sample (a few minutes on 2 cores):
the cross-fitted population (2 folds x 4 repeats) pruned to 90 % loses little top-line accuracy, and
the CIE, at least 1 % of all rows, are rows the dense models already get far less often right."""

from __future__ import annotations

import copy

import pytest
import torch

from tasks.compress import compress
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.population import train_crossfit
from tasks.run import standalone_tracking


@pytest.mark.slow
def test_out_of_sample_cie_are_rows_the_dense_population_finds_hard(tmp_path):
    from flows.cli import load_config

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = copy.deepcopy(load_config([]))
        track, run_dir = standalone_tracking(cfg), str(tmp_path)
        ingest.fn(cfg, run_dir, track)
        filter_rows.fn(cfg, run_dir, track)
        train_crossfit.fn(cfg, run_dir, track)
        summary = compress.fn(cfg, run_dir, track)
    finally:
        torch.set_num_threads(threads)
    level = summary["levels"]["p90"]
    assert level["test_accuracy_drop"] < 0.05
    assert 0.01 <= level["cie_fraction"] < 0.1 and level["cie_count_train"] > 0
    assert level["compressed_accuracy_cie_all"] < level["compressed_accuracy_non_cie_all"] - 0.4
    assert level["dense_accuracy_gap_all"] >= 0.2 and level["dense_accuracy_gap_all_ci"][0] > 0
