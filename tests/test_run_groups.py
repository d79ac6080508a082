"""The parent MLflow run of a DVC run (tasks/run.py) and the console progress (tasks/progress.py)."""

from __future__ import annotations

import io

import pytest
from mlflow.tracking import MlflowClient

from flows.repro_server import prefect_api_for_dvc
from tasks import progress
from tasks.run import grouped_stage, join_group, repro_group


@pytest.fixture
def cfg(tmp_path, tiny_cfg) -> dict:
    return {**tiny_cfg, "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "groups"}}


def test_outside_dvc_there_is_no_group():
    assert repro_group({}) is None
    assert repro_group({"DVC_EXP_NAME": "lumpy-yaks", "DVC_EXP_BASELINE_REV": "abc"}) == ("exp:abc:lumpy-yaks", "lumpy-yaks")


def test_stages_of_one_experiment_share_a_parent_and_another_experiment_gets_its_own(cfg, tmp_path):
    first = join_group(cfg, str(tmp_path), {"DVC_EXP_NAME": "one"})
    again = join_group(cfg, str(tmp_path), {"DVC_EXP_NAME": "one"})
    other = join_group(cfg, str(tmp_path), {"DVC_EXP_NAME": "two"})
    assert first["parent_run_id"] == again["parent_run_id"] != other["parent_run_id"]
    parent = MlflowClient(cfg["tracking"]["uri"]).get_run(first["parent_run_id"])
    assert parent.info.run_name == "one" and parent.data.tags["dvc.exp_name"] == "one"
    assert parent.data.params["train.population"] == str(cfg["train"]["population"])
    assert {"git_commit", "git_dirty", "exemplar.config_digest", "exemplar.group"} <= set(parent.data.tags)


def test_a_failing_stage_leaves_its_parent_failed_and_copies_findings_on_success(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "three")
    client = MlflowClient(cfg["tracking"]["uri"])

    @grouped_stage
    def ingest_flow(cfg, run_dir, track=None):
        return {"rows_read": 3, "rows": 3, "hash": "abc123", "quarantined": 0, "track": track}

    @grouped_stage
    def score_flow(cfg, run_dir, track=None):
        raise RuntimeError("boom")

    result = ingest_flow(cfg, str(tmp_path))
    parent = client.get_run(result["track"]["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["dataset_hash"] == "abc123"
    with pytest.raises(RuntimeError):
        score_flow(cfg, str(tmp_path))
    assert client.get_run(parent.info.run_id).info.status == "FAILED"


def test_prefect_is_left_alone_outside_dvc_or_with_a_server_of_ones_own():
    with prefect_api_for_dvc({}) as url:
        assert url is None
    with prefect_api_for_dvc({"DVC_ROOT": "/x", "PREFECT_API_URL": "http://127.0.0.1:4200/api"}) as url:
        assert url is None


def test_one_line_per_stage_and_quarantine_is_announced(capsys, tmp_path):
    progress.stage_line("ingest", str(tmp_path), {"rows": 10, "train_rows": 8, "test_rows": 2, "num_classes": 2, "quarantined": 3}, 1.25)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("ingest      1.2 s  10 rows (8 train, 2 test), 2 classes, 3 quarantined")
    assert err[1] == f"ingest: 3 row(s) quarantined, each with its reason: see {tmp_path / 'quarantine.parquet'}"
    assert len(err) == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_outside_ci():
    assert progress.is_interactive(_Terminal(), {}) and not progress.is_interactive(_Terminal(), {"CI": "1"})
    assert not progress.is_interactive(io.StringIO(), {})


def test_advance_is_a_no_op_without_a_stage_display_and_moves_the_bar_with_one():
    progress.advance(5, total=10)  # nothing shown, nothing raised
    with progress.stage("ingest", enabled=True):
        progress.advance(3, total=10, detail="ingest: rows read")
        progress.advance(2)
        bar = progress._ACTIVE["progress"]
        [task] = bar.tasks
        assert (task.completed, task.total, task.description) == (5, 10, "ingest: rows read")
        with progress.display() as shared:
            assert shared is bar  # training's bar joins the stage's display (rich allows one at a time)
    assert progress._ACTIVE["progress"] is None
