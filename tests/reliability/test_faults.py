"""Fault injection: the pipeline's process group is SIGKILLed at chosen points (inside ingest, between a
checkpoint and its dynamics, inside score, in the middle of compress's commit), rerun, and must end with
scores identical to an uninterrupted run. Two runs into one folder: the second fails at once, the first
finishes intact. One kill per point, and random sequences of kills, are marked slow."""

from __future__ import annotations

import random
import signal
import time

import pandas as pd
import pytest

from tasks import manifest as records


def _finish(process, timeout=600) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory, request):
    return {}


def _reference_scores(pipeline_process, tmp_path, cache) -> pd.DataFrame:
    if "scores" not in cache:
        status, err = _finish(pipeline_process(tmp_path / "reference"))
        assert status == 0, err
        cache["scores"] = pd.read_parquet(tmp_path / "reference" / "scores.parquet")
    return cache["scores"]


def _assert_complete_and_equal(out_dir, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(out_dir / "scores.parquet"), expected)
    manifest = records.read(out_dir)
    assert all(entry["status"] == "complete" for entry in manifest["stages"].values()), manifest["stages"]
    assert not (out_dir / ".staging").exists() and not list(out_dir.rglob("*.tmp"))


POINTS = ["staged:ingest", "checkpoint:1:2", "staged:score", "committing:compress"]


def test_runs_killed_inside_ingest_training_score_and_compress_resume_to_identical_scores(pipeline_process, tmp_path, reference):
    """One folder, killed at each point in turn (each rerun resumes, then dies at the next point), then
    finished: the scores equal an uninterrupted run's."""
    expected = _reference_scores(pipeline_process, tmp_path, reference)
    out_dir = tmp_path / "killed"
    for point in POINTS:
        status, err = _finish(pipeline_process(out_dir, fault=f"kill@{point}"))
        assert status == -signal.SIGKILL, (point, err)
        assert not (out_dir / "scores.parquet").exists()
    status, err = _finish(pipeline_process(out_dir))
    assert status == 0, err
    _assert_complete_and_equal(out_dir, expected)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS + ["committing:ingest", "checkpoint:0:1", "committing:score", "staged:compress", "committing:report"])
def test_a_run_killed_at_a_point_resumes_to_identical_scores(point, pipeline_process, tmp_path, reference):
    expected = _reference_scores(pipeline_process, tmp_path, reference)
    out_dir = tmp_path / "killed"
    status, err = _finish(pipeline_process(out_dir, fault=f"kill@{point}"))
    assert status == -signal.SIGKILL, err
    assert not (out_dir / "scores.parquet").exists()
    status, err = _finish(pipeline_process(out_dir))
    assert status == 0, err
    _assert_complete_and_equal(out_dir, expected)


def test_a_second_run_into_a_busy_folder_fails_at_once_and_the_first_finishes_intact(pipeline_process, tmp_path, reference):
    expected = _reference_scores(pipeline_process, tmp_path, reference)
    out_dir, go = tmp_path / "shared", tmp_path / "go"
    first = pipeline_process(out_dir, fault=f"wait@staged:filter@{go}")
    deadline = time.monotonic() + 300
    while not (out_dir / ".staging" / "filter" / "keep.parquet").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.2)
    status, err = _finish(pipeline_process(out_dir, "train.epochs=2"))
    err = " ".join(err.split())
    assert status == 2 and f"being written by another exemplar run (pid {first.pid}" in err and "Traceback" not in err
    go.touch()
    status, err = _finish(first)
    assert status == 0, err
    _assert_complete_and_equal(out_dir, expected)


# The population's seeds train together as one ensemble, so checkpoints come epoch by epoch across seeds.
SLOW_POINTS = [
    "staged:ingest", "committing:ingest", "staged:filter", "checkpoint:0:1", "checkpoint:1:1", "checkpoint:1:2",
    "checkpoint:0:3", "staged:score", "committing:score", "staged:compress", "committing:compress", "staged:report",
    "committing:report",
]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_kills_in_a_row_still_end_with_identical_scores(seed, pipeline_process, tmp_path, reference):
    expected = _reference_scores(pipeline_process, tmp_path, reference)
    out_dir = tmp_path / "killed"
    for point in sorted(random.Random(seed).sample(SLOW_POINTS, 4), key=SLOW_POINTS.index):
        status, err = _finish(pipeline_process(out_dir, fault=f"kill@{point}"))
        assert status == -signal.SIGKILL, (point, err)
    status, err = _finish(pipeline_process(out_dir))
    assert status == 0, err
    _assert_complete_and_equal(out_dir, expected)
