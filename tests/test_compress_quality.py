"""Hooker et al.'s effect on digits with the default settings and a population of 5 (about 3 minutes on
2 cores): pruning to 90% costs little top-line accuracy, but the few CIE examples lose most of it."""

from __future__ import annotations

import copy

import pytest
import torch

from tasks.compress import compress
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.run import standalone_tracking
from tasks.train import train


@pytest.mark.slow
def test_cie_accuracy_is_far_below_non_cie_while_top_line_drops_little(tmp_path):
    from flows.cli import load_config

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = copy.deepcopy(load_config(["train.population=5"]))
        track, run_dir = standalone_tracking(cfg), str(tmp_path)
        ingest.fn(cfg, run_dir, track)
        filter_rows.fn(cfg, run_dir, track)
        for seed in range(5):
            train.fn(cfg, run_dir, track, seed=seed)
        level = compress.fn(cfg, run_dir, track)["levels"]["p90"]
    finally:
        torch.set_num_threads(threads)
    assert level["test_accuracy_drop"] < 0.03
    assert 0 < level["cie_fraction"] < 0.05
    assert level["compressed_accuracy_cie_all"] < level["compressed_accuracy_non_cie_all"] - 0.5
    assert level["dense_accuracy_cie_all"] < level["dense_accuracy_non_cie_all"]
