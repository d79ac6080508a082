"""The parent MLflow run that groups one run's stage runs.

- ``python -m flows.pipeline``: :func:`open_pipeline_run` creates it before the first stage and
  :func:`close_pipeline_run` closes it after the last.
- ``dvc repro`` / ``dvc exp run``: every stage is its own process. :func:`grouped_stage` (on each stage
  flow) finds the parent of *this* repro, or creates it when this is the first stage to run: the key is
  DVC's experiment name (``DVC_EXP_NAME``) when DVC sets it, else the ``dvc`` process that runs the
  stages (its pid and start time, so two repros never share a parent). The parent's id is written to
  ``<out_dir>/mlflow_run.json``, where the next stage of the same repro finds it.

Parents are named after the experiment or the ``out_dir`` and tagged with the git commit and dirty flag,
the dataset hash, the Prefect flow-run id and the resolved config (params, plus ``config.json``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tasks import progress, tracking
from tasks._io import read_json, write_json
from tasks._prefect import stage_task
from tasks.ancestry import dvc_ancestor

GROUP_FILE = "mlflow_run.json"


@stage_task("open-pipeline-run")
def open_pipeline_run(cfg: dict, run_dir: str) -> dict:
    """Create the parent run and return the tracking handle every stage task receives."""
    return create_parent(cfg, run_dir, Path(run_dir).name, group=None)


@stage_task("close-pipeline-run")
def close_pipeline_run(track: dict, status: str, metrics: dict | None = None) -> None:
    if metrics:
        annotate_parent(track, {"metrics": metrics})
    tracking.client(track["uri"]).set_terminated(track["parent_run_id"], status=status)


def standalone_tracking(cfg: dict) -> dict:
    """Tracking handle for a stage run on its own, outside any group: no parent run."""
    return {"uri": tracking.tracking_uri(cfg["tracking"]["uri"]), "experiment": cfg["tracking"]["experiment"], "parent_run_id": None}


# --- the parent run --------------------------------------------------------------------------------


def create_parent(cfg: dict, run_dir: str, name: str, group: str | None, tags: dict | None = None) -> dict:
    """Create a parent run named `name` with the run's identity as tags; returns the tracking handle."""
    track = standalone_tracking(cfg)
    base = {"out_dir": str(run_dir), "exemplar.stage": "pipeline", "git_dirty": str(git_dirty()).lower(),
            "exemplar.config_digest": config_digest(cfg)}
    tags = {**base, **({"exemplar.group": group} if group else {}), **(tags or {})}
    run_id = tracking.create_run(track["uri"], track["experiment"], name, tags=tags)
    tracking.log_params(track["uri"], run_id, {k: v for k, v in cfg.items() if k != "tracking"})
    tracking.log_dict(track["uri"], run_id, cfg, "config.json")
    return {**track, "parent_run_id": run_id}


def annotate_parent(track: dict, result: object) -> None:
    """Copy what a stage found out onto the parent: the dataset hash (ingest) and headline metrics (report)."""
    if not isinstance(result, dict) or not track.get("parent_run_id"):
        return
    uri, parent = track["uri"], track["parent_run_id"]
    metrics = result.get("metrics") if isinstance(result.get("metrics"), dict) else None
    if metrics:
        tracking.log_metrics(uri, parent, metrics)
    digest = (metrics or {}).get("dataset_hash") or (result.get("hash") if "rows_read" in result else None)
    if digest:
        tracking.set_tags(uri, parent, {"dataset_hash": digest})


def config_digest(cfg: dict) -> str:
    text = json.dumps({k: v for k, v in cfg.items() if k != "tracking"}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@functools.lru_cache(maxsize=1)
def git_dirty() -> bool | None:
    """Whether tracked files of the checkout differ from HEAD (None outside git)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


# --- stages run alone (DVC): one parent per repro ----------------------------------------------------


def repro_group(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(key, run name) of the DVC run this process belongs to, or None when not run by DVC."""
    environ = os.environ if environ is None else environ
    if environ.get("DVC_EXP_NAME"):
        return f"exp:{environ.get('DVC_EXP_BASELINE_REV', '')[:12]}:{environ['DVC_EXP_NAME']}", environ["DVC_EXP_NAME"]
    if not environ.get("DVC_ROOT"):
        return None
    ancestor = dvc_ancestor()
    if ancestor is None:
        return None
    pid, started = ancestor
    return f"dvc:{pid}:{started}", None


def join_group(cfg: dict, run_dir: str, environ: Mapping[str, str] | None = None) -> dict:
    """The tracking handle of a stage run alone: nested under its repro's parent when DVC runs it."""
    group = repro_group(environ)
    if group is None:
        return standalone_tracking(cfg)
    key, name = group
    path = Path(run_dir) / GROUP_FILE
    found = read_json(path) if path.exists() else {}
    track = standalone_tracking(cfg)
    if found.get("group") == key and found.get("uri") == track["uri"]:
        track = {**track, "parent_run_id": found["parent_run_id"]}
        tracking.client(track["uri"]).update_run(track["parent_run_id"], status="RUNNING")
        return track
    label = name or f"{Path(run_dir).name} {time.strftime('%Y-%m-%d %H:%M:%S')}"
    track = create_parent(cfg, run_dir, label, key, {"dvc.exp_name": name} if name else None)
    write_json({"group": key, "uri": track["uri"], "parent_run_id": track["parent_run_id"]}, path)
    return track


def grouped_stage(stage: Callable[..., dict]) -> Callable[..., dict]:
    """Decorate a stage flow ``(cfg, run_dir, track=None, ...)``: inside the pipeline `track` is passed
    through; run alone, the stage joins its repro's parent run (see :func:`join_group`) and leaves the
    parent FINISHED (or FAILED) with what the stage found out copied onto it. Either way the stage shows
    its progress on a terminal and prints one line when done (:mod:`tasks.progress`)."""

    name = stage.__name__.removesuffix("_flow")

    @functools.wraps(stage)
    def run(cfg: dict, run_dir: str, track: dict | None = None, *args, **kwargs):
        started = time.perf_counter()
        with progress.stage(name):
            result = _run_grouped(stage, cfg, run_dir, track, *args, **kwargs)
        progress.stage_line(name, run_dir, result, time.perf_counter() - started)
        return result

    return run


def _run_grouped(stage: Callable[..., dict], cfg: dict, run_dir: str, track: dict | None, *args, **kwargs):
    """Run the stage inside its group (see :func:`grouped_stage`)."""
    if track is not None:
        return stage(cfg, run_dir, track, *args, **kwargs)
    track = join_group(cfg, run_dir)
    if track["parent_run_id"] is None:
        return stage(cfg, run_dir, track, *args, **kwargs)
    try:
        result = stage(cfg, run_dir, track, *args, **kwargs)
    except BaseException:
        tracking.client(track["uri"]).set_terminated(track["parent_run_id"], status="FAILED")
        raise
    annotate_parent(track, result)
    tracking.client(track["uri"]).set_terminated(track["parent_run_id"], status="FINISHED")
    return result
