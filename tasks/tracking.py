"""MLflow helpers. Runs are addressed by id (MLflow's active run is thread-local and Prefect tasks
run in worker threads), so every function takes the run id explicitly."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

DEFAULT_EXPERIMENT = "exemplar"


def tracking_uri(configured: str | None = None) -> str:
    """Configured URI, else $MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def client(uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the exemplar checkout, or "unknown" outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def create_run(uri: str, experiment: str, name: str, parent_run_id: str | None = None, tags: dict | None = None) -> str:
    """Create a run (nested under `parent_run_id` if given) and return its id."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else mlflow_client.create_experiment(experiment)
    commit = git_commit()
    all_tags = {"mlflow.runName": name, "git_commit": commit, "mlflow.source.git.commit": commit}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    if flow_run := prefect_flow_run_id():
        all_tags["prefect.flow_run_id"] = flow_run
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    return mlflow_client.create_run(experiment_id, tags=all_tags, run_name=name).info.run_id


def prefect_flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in, if any."""
    from prefect.runtime import flow_run

    return flow_run.get_id()


@contextlib.contextmanager
def stage_run(uri: str, experiment: str, stage: str, parent_run_id: str | None, params: dict) -> Iterator[str]:
    """A nested run for one stage: params logged up front, FAILED on an exception, FINISHED otherwise."""
    run_id = create_run(uri, experiment, stage, parent_run_id, tags={"exemplar.stage": stage})
    log_params(uri, run_id, params)
    try:
        yield run_id
    except BaseException:
        client(uri).set_terminated(run_id, status="FAILED")
        raise
    client(uri).set_terminated(run_id, status="FINISHED")


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """{'train': {'lr': 0.1}} -> {'train.lr': '0.1'}."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = str(value)[:6000]
    return flat


def log_params(uri: str, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in flatten(params).items()]
    for begin in range(0, len(items), 100):
        client(uri).log_batch(run_id, params=items[begin : begin + 100])


def log_metrics(uri: str, run_id: str, metrics: dict, step: int | None = None) -> None:
    """Log the numeric entries of `metrics` (non-numeric values are skipped)."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [
        Metric(k, float(v), now, step or 0)
        for k, v in flatten_numbers(metrics).items()
    ]
    if items:
        client(uri).log_batch(run_id, metrics=items)


def flatten_numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_numbers(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            flat[name] = float(value)
    return flat


def set_tags(uri: str, run_id: str, tags: dict) -> None:
    from mlflow.entities import RunTag

    client(uri).log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])


def log_artifact(uri: str, run_id: str, path: Path, artifact_path: str | None = None) -> None:
    client(uri).log_artifact(run_id, str(path), artifact_path)


def log_dict(uri: str, run_id: str, payload: dict, name: str) -> None:
    """Store `payload` as the JSON artifact `name` of the run."""
    client(uri).log_dict(run_id, payload, name)


_EXPORT_LOCK = threading.Lock()  # torch.export is not thread-safe: seeds on threads (or Dask threads) export in turn


def log_model(uri: str, run_id: str, model, example) -> None:
    """Log a torch model with `mlflow.pytorch` in the safe ``pt2`` (torch.export) format.

    `example` must hold at least 2 rows: with a batch of 1 the exported model rejects other batch sizes.
    """
    import mlflow.pytorch
    import torch

    mlflow.set_tracking_uri(uri)
    with _EXPORT_LOCK, mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
        mlflow.pytorch.log_model(
            model, name="model", input_example=example, serialization_format="pt2",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )


# --- before a run: is the server there, and did an earlier run in this folder die? -------------------


def unreachable(uri: str, timeout: float) -> str | None:
    """Why an http(s) tracking server does not answer its /health check within `timeout` s (None if it does,
    or if `uri` is not a server, e.g. a SQLite file)."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as answer:
            return None if answer.status < 500 else f"it answered HTTP {answer.status}"
    except urllib.error.HTTPError as error:
        return None if error.code < 500 else f"it answered HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"no answer within {timeout:g} s ({reason})"


def local_uri(out_dir: Path) -> str:
    """Where a run tracks when the server is down and tracking.required=false."""
    return f"sqlite:///{Path(out_dir).resolve() / 'mlflow.db'}"


def replay_hint(local: str, server: str, experiment: str) -> str:
    """How to look at a locally tracked run and copy it to the server later."""
    return (
        f"tracked locally in {local} because {server} did not answer. To look at it: mlflow ui --backend-store-uri {local}. "
        f"To copy it to the server when it is back: pip install mlflow-export-import, then "
        f"MLFLOW_TRACKING_URI={local} export-experiment --experiment {experiment} --output-dir exported && "
        f"MLFLOW_TRACKING_URI={server} import-experiment --experiment-name {experiment} --input-dir exported"
    )


def fail_abandoned_runs(uri: str, experiment: str, out_dir: str) -> list[str]:
    """Mark FAILED every run still RUNNING that an earlier (killed) run into `out_dir` left, with its nested
    stage runs. Called under the folder's writer lock, so no live run can be among them."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return []
    quoted = str(out_dir).replace("'", "\\'")
    parents = mlflow_client.search_runs([found.experiment_id], f"tags.out_dir = '{quoted}' and attributes.status = 'RUNNING'")
    failed = []
    for parent in parents:
        children = mlflow_client.search_runs(
            [found.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}' and attributes.status = 'RUNNING'"
        )
        for run in [*children, parent]:
            mlflow_client.set_tag(run.info.run_id, "exemplar.abandoned", "killed before it finished; marked failed by the next run")
            mlflow_client.set_terminated(run.info.run_id, status="FAILED")
            failed.append(run.info.run_id)
    return failed
