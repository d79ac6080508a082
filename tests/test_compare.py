"""`exemplar compare RUN_A RUN_B`: config differences and metric deltas of two runs, read from MLflow."""

from __future__ import annotations

import pytest

from flows.pipeline import main as exemplar
from tasks import tracking
from tasks.compare import metric_deltas, param_differences


def test_param_differences_name_changed_added_and_removed_keys():
    a = {"train.epochs": "20", "train.lr": "0.1", "data.name": "digits"}
    b = {"train.epochs": "3", "train.lr": "0.1", "runner.name": "dask"}
    assert param_differences(a, b) == [("data.name", "digits", None), ("runner.name", None, "dask"), ("train.epochs", "20", "3")]


def test_metric_deltas_are_b_minus_a_on_shared_metrics():
    assert metric_deltas({"acc": 0.9, "only_a": 1.0}, {"acc": 0.95, "only_b": 2.0}) == [("acc", 0.9, 0.95, pytest.approx(0.05))]


@pytest.fixture
def two_runs(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ids = []
    for name, epochs, accuracy in (("baseline", 20, 0.9777), ("short", 3, 0.9), ("short", 3, 0.91)):
        run_id = tracking.create_run(uri, "cmp", name)
        tracking.log_params(uri, run_id, {"train": {"epochs": epochs, "lr": 0.1}})
        tracking.log_metrics(uri, run_id, {"test_accuracy": accuracy, "cie_p90": 5})
        ids.append(run_id)
    return uri, ids


def test_compare_by_id_and_by_name_prints_differences_and_deltas(two_runs, capsys):
    uri, (baseline, _, latest_short) = two_runs
    assert exemplar(["compare", baseline, "short", "--experiment", "cmp", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert f"B: short ({latest_short})" in out  # a name means the latest run of that name
    assert "train.epochs" in out and "20 -> 3" in out and "train.lr" not in out
    assert "test_accuracy" in out and "-0.0677" in out


def test_unknown_run_is_a_one_paragraph_error(two_runs, capsys):
    uri, (baseline, _, _) = two_runs
    assert exemplar(["compare", baseline, "nope", "--experiment", "cmp", "--tracking-uri", uri]) == 2
    assert "no MLflow run with id or name 'nope'" in capsys.readouterr().err


def test_compare_through_the_module_entry_is_not_read_as_settings():
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    done = subprocess.run([sys.executable, "-m", "flows.pipeline", "compare", "--help"], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0 and "run_a" in done.stdout, done.stderr[-2000:]
