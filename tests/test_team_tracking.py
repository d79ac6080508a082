"""Team use, for real: a tiny pipeline whose population trains on a local 2-worker Dask cluster,
tracked to an MLflow server started with `make mlflow-server` on loopback; everything is read back
through the MLflow client. The server is stopped by the process id we started."""

from __future__ import annotations

import os
import shutil
import subprocess

import mlflow
import mlflow.pytorch
import pytest
from mlflow.tracking import MlflowClient

import tasks.train
from tasks.datasets import read_dataset, tensors
from tests.conftest import PROJECT_ROOT
from tests.servers import free_port, running

pytest.importorskip("prefect_dask", reason="the Dask extra is installed by `make setup` (.[test,dask])")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> str:
    """`make mlflow-server` on a free loopback port (set-up is not re-run: the stamp is taken as current)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    folder, port = tmp_path_factory.mktemp("mlflow-server"), free_port()
    command = ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", "mlflow-server",
               f"MLFLOW_PORT={port}", f"MLFLOW_DIR={folder}"]
    with running(command, f"http://127.0.0.1:{port}/health", folder / "server.log", cwd=PROJECT_ROOT, timeout=120):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dask_run(mlflow_server, prefect_server, tiny_cfg, tmp_path_factory):
    """The tiny pipeline with runner=dask (2 workers, threads: no Prefect server process needed)."""
    from flows.pipeline import pipeline_flow

    record = tmp_path_factory.mktemp("workers") / "addresses.txt"
    train_model = tasks.train.train_model

    def on_a_dask_worker(*args, **kwargs):
        from distributed import get_worker

        with open(record, "a") as out:  # a file: Dask pickles this function (and any list it closes over)
            out.write(get_worker().address + "\n")  # get_worker raises ValueError outside a Dask worker
        return train_model(*args, **kwargs)

    cfg = {**tiny_cfg, "runner": {"name": "dask", "max_workers": 2, "processes": False, "address": None},
           "tracking": {**tiny_cfg["tracking"], "uri": mlflow_server, "experiment": "team"}}
    run_dir = tmp_path_factory.mktemp("team-run")
    session_uri = os.environ["MLFLOW_TRACKING_URI"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks.train, "train_model", on_a_dask_worker)
        patch.setenv("MLFLOW_TRACKING_URI", session_uri)  # mlflow.set_tracking_uri(server) also sets the variable:
        result = pipeline_flow(cfg, str(run_dir))          # restore it so later tests do not track to a stopped server
    mlflow.set_tracking_uri(session_uri)
    return result, record.read_text().split(), run_dir


def test_the_population_trains_on_the_dask_workers(dask_run):
    result, workers, run_dir = dask_run
    assert len(workers) == 2 and all(address.startswith(("inproc://", "tcp://")) for address in workers), workers
    assert (run_dir / "checkpoints" / "seed_1").is_dir() and (run_dir / "report.html").is_file()


def test_the_server_holds_parent_nested_runs_metrics_model_and_report(dask_run, mlflow_server, tmp_path):
    result, _, run_dir = dask_run
    client = MlflowClient(mlflow_server)
    parent = client.get_run(result["mlflow_run_id"])
    assert parent.info.run_name == run_dir.name and parent.info.status == "FINISHED"
    assert parent.data.metrics["test_accuracy"] == pytest.approx(result["metrics"]["test_accuracy"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    names = {run.info.run_name for run in children}
    assert {"ingest", "filter", "train-seed0", "train-seed1", "score", "compress", "report"} <= names
    train = next(run for run in children if run.info.run_name == "train-seed0")
    assert len(client.get_metric_history(train.info.run_id, "train_loss")) == tiny_epochs(parent)
    report = client.download_artifacts(parent.info.run_id, "report/report.html", str(tmp_path))
    assert open(report).read() == (run_dir / "report.html").read_text()
    session_uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(mlflow_server)  # runs:/ URIs resolve against the global tracking URI
    try:
        model = mlflow.pytorch.load_model(f"runs:/{train.info.run_id}/model")
    finally:
        mlflow.set_tracking_uri(session_uri)
    x, _ = tensors(read_dataset(run_dir / "dataset.parquet"))
    assert tuple(model(x[:2]).shape) == (2, 10)  # 10 digit classes


def tiny_epochs(parent) -> int:
    return int(parent.data.params["train.epochs"])


def test_make_mlflow_server_uses_sqlite_local_artifacts_and_no_job_runner():
    dry = subprocess.run(["make", "-n", "-o", ".venv/.installed-stamp", "mlflow-server"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=30).stdout
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in dry and "--host 127.0.0.1" in dry
    assert "--backend-store-uri sqlite:///" in dry and "--artifacts-destination /" in dry
