"""`dvc repro` runs the same stage flows as the pipeline, and a second `dvc repro` does nothing; one
repro is one parent MLflow run with every stage's run nested under it; it prints one line per stage.

The project is copied into a fresh git repository so the test never touches this checkout's
artifacts/ or dvc.lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import PROJECT_ROOT

COPIED = ["conf", "flows", "tasks", "exemplar", "dvc.yaml", "params.yaml", ".dvc/config"]
STAGES = ["ingest", "filter", "train", "score", "compress", "report"]
SHRINK = {"data": {"limit": 300}, "train": {"epochs": 2, "checkpoint_every": 1, "population": 2, "crossfit_repeats": 2}}


def tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


def run(args: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore",
           "MLFLOW_TRACKING_URI": tracking_uri(cwd), "PREFECT_HOME": str(cwd / ".prefect"), **settings}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory)


def make_project(tmp_path_factory) -> Path:
    """The project's sources and a shrunk params.yaml in a fresh git repository."""
    root = tmp_path_factory.mktemp("dvcproject")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source, target = PROJECT_ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, ignore=ignore) if source.is_dir() else shutil.copy(source, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in SHRINK.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], root)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], root)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], root)
    return root


@pytest.fixture(scope="module")
def repro_output(dvc_project: Path) -> str:
    done = run(["dvc", "repro"], dvc_project)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def reproduced(dvc_project: Path, repro_output: str) -> Path:
    return dvc_project


def pipeline_runs(root: Path) -> tuple[MlflowClient, list, list]:
    """(client, parent runs, nested runs) in the clone's MLflow store."""
    client = MlflowClient(tracking_uri(root))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in runs if r.data.tags.get("exemplar.stage") == "pipeline"]
    return client, parents, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_repro_writes_the_pipeline_outputs(reproduced):
    artifacts = reproduced / "artifacts"
    for name in ["dataset.parquet", "keep.parquet", "scores.parquet", "report.html", "report.json", "metrics.json"]:
        assert (artifacts / name).is_file(), name
    assert len(pd.read_parquet(artifacts / "scores.parquet")) == SHRINK["data"]["limit"]
    assert (reproduced / "dvc.lock").is_file()


def test_one_repro_is_one_parent_run_with_the_stage_runs_nested(reproduced):
    client, parents, nested = pipeline_runs(reproduced)
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    assert {r.data.tags["mlflow.parentRunId"] for r in nested} == {parent.info.run_id}
    stages = {r.data.tags["exemplar.stage"] for r in nested}
    assert stages == {"ingest", "filter", "train-seed0", "train-seed1", "crossfit", "score", "compress", "report"}
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("artifacts")
    tags = parent.data.tags
    assert tags["dataset_hash"] == json.loads((reproduced / "artifacts" / "headline.json").read_text())["dataset_hash"]
    assert {"git_commit", "git_dirty", "prefect.flow_run_id", "exemplar.config_digest"} <= set(tags)
    assert parent.data.params["train.epochs"] == "2" and "test_accuracy" in parent.data.metrics
    assert "config.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_repro_prints_one_line_per_stage_and_headline_metrics_only(reproduced, repro_output):
    ours = [line for line in repro_output.splitlines() if line and not line.startswith(("Running stage", "> ", "Updating lock", "Generating lock", "Use `dvc push`", "To track the changes", "\tgit add", "To enable auto staging"))]
    assert len([line for line in ours if line.split()[0] in STAGES]) == len(STAGES), ours
    assert len(ours) <= len(STAGES) + 4, ours
    metrics = json.loads((reproduced / "artifacts" / "headline.json").read_text())
    assert 5 <= len(metrics) <= 60 and "test_accuracy" in metrics


def test_the_stages_shared_one_prefect_server_that_stopped_with_dvc(reproduced):
    servers = reproduced / ".prefect" / "repro-servers"
    deadline = time.monotonic() + 60  # the supervisor notices dvc's exit within a second, then stops the server
    while (list(servers.glob("*.json")) or "stopped" not in (servers / "history.log").read_text()) and time.monotonic() < deadline:
        time.sleep(0.5)
    history = (servers / "history.log").read_text().splitlines()
    assert [line.split()[1] for line in history] == ["started", "stopped"], history
    assert not list(servers.glob("*.json"))


def test_the_stages_after_the_first_ran_in_the_repros_warm_stage_host(reproduced):
    log = (reproduced / ".prefect" / "repro-servers" / "stages.log").read_text()
    ran = [line.split()[2] for line in log.splitlines() if line.split()[1] == "ran"]
    assert ran == [f"flows.{stage}" for stage in STAGES[1:]], log
    assert all(line.split(": exit ")[1].startswith("0,") for line in log.splitlines() if " ran " in line), log
    host = int(log.split("host pid ")[1].split()[0])
    deadline = time.monotonic() + 60  # stopped by the supervisor once dvc exits
    while psutil.pid_exists(host) and psutil.Process(host).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not psutil.pid_exists(host) or psutil.Process(host).status() == psutil.STATUS_ZOMBIE


def test_a_repro_without_the_warm_host_writes_the_same_outputs(reproduced, tmp_path_factory):
    cold = make_project(tmp_path_factory)
    run(["dvc", "repro"], cold, EXEMPLAR_WARM_STAGES="0")
    assert not (cold / ".prefect" / "repro-servers" / "stages.log").exists()
    for name in ["dataset.parquet", "keep.parquet", "scores.parquet", "compression.parquet"]:
        warm, fresh = (pd.read_parquet(root / "artifacts" / name) for root in (reproduced, cold))
        timings = [column for column in warm.columns if column.startswith("latency")]
        pd.testing.assert_frame_equal(warm.drop(columns=timings), fresh.drop(columns=timings), check_exact=True, obj=name)


def test_second_repro_is_a_no_op(reproduced):
    before = (reproduced / "artifacts" / "report.json").stat().st_mtime_ns
    done = run(["dvc", "repro"], reproduced)
    assert "up to date" in done.stdout
    assert "Running stage" not in done.stdout
    assert (reproduced / "artifacts" / "report.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_exp_run_with_a_set_param(reproduced):
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], reproduced)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "lock"], reproduced)
    run(["dvc", "exp", "run", "-S", "data.limit=300", "-S", "train.epochs=3", "-S", "train.checkpoint_every=1", "-S", "train.population=2", "-S", "train.crossfit_repeats=2"], reproduced)
    params = yaml.safe_load((reproduced / "params.yaml").read_text())
    assert params["train"]["epochs"] == 3
    assert len(list((reproduced / "artifacts" / "checkpoints" / "seed_0").glob("epoch_*.pt"))) == 3
    _, parents, nested = pipeline_runs(reproduced)
    [experiment] = [p for p in parents if "dvc.exp_name" in p.data.tags]  # one more parent: the experiment's
    assert experiment.info.run_name == experiment.data.tags["dvc.exp_name"]
    assert experiment.data.params["train.epochs"] == "3"
    assert {r.data.tags["exemplar.stage"] for r in nested if r.data.tags["mlflow.parentRunId"] == experiment.info.run_id} >= {"train-seed0", "score", "report"}


@pytest.mark.slow
def test_exp_run_with_another_fusion_recipe_reruns_the_report_alone(reproduced):
    """The report stage's params are the whole `report` section, so `-S report.fusion.<key>` re-ranks the
    experiment's run with that recipe and DVC redoes no other stage. (With Hydra composition on, `-S` composes
    params.yaml from conf/ afresh: the shrunk values this project's params.yaml holds are passed again.)"""
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], reproduced)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "lock", "--allow-empty"], reproduced)
    current = yaml.safe_load((reproduced / "params.yaml").read_text())
    shrunk = [arg for section, values in SHRINK.items() for key in values for arg in ("-S", f"{section}.{key}={current[section][key]}")]
    done = run(["dvc", "exp", "run", *shrunk, "-S", "report.fusion.alpha=0.2"], reproduced)
    ran = {stage for stage in STAGES if f"Running stage '{stage}'" in done.stdout}
    assert ran == {"report"}, done.stdout[-2000:]
    fusion = json.loads((reproduced / "artifacts" / "report.json").read_text())["fusion"]
    assert fusion["changed"] == {"alpha": 0.2} and fusion["recipe"]["alpha"] == 0.2
    assert yaml.safe_load((reproduced / "artifacts" / "settings.yaml").read_text())["report"]["fusion"]["alpha"] == 0.2
