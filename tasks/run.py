"""The pipeline's parent MLflow run: opened before the first stage, closed after the last."""

from __future__ import annotations

from tasks import tracking
from tasks._prefect import stage_task


@stage_task("open-pipeline-run")
def open_pipeline_run(cfg: dict, run_dir: str) -> dict:
    """Create the parent run and return the tracking handle every stage task receives."""
    uri = tracking.tracking_uri(cfg["tracking"]["uri"])
    experiment = cfg["tracking"]["experiment"]
    run_id = tracking.create_run(uri, experiment, "pipeline", tags={"out_dir": run_dir, "exemplar.stage": "pipeline"})
    tracking.log_params(uri, run_id, {k: v for k, v in cfg.items() if k != "tracking"})
    return {"uri": uri, "experiment": experiment, "parent_run_id": run_id}


@stage_task("close-pipeline-run")
def close_pipeline_run(track: dict, status: str, metrics: dict | None = None) -> None:
    if metrics:
        tracking.log_metrics(track["uri"], track["parent_run_id"], metrics)
        if "dataset_hash" in metrics:
            tracking.set_tags(track["uri"], track["parent_run_id"], {"dataset_hash": metrics["dataset_hash"]})
    tracking.client(track["uri"]).set_terminated(track["parent_run_id"], status=status)


def standalone_tracking(cfg: dict) -> dict:
    """Tracking handle for a stage run on its own (e.g. by DVC): no parent run."""
    return {"uri": tracking.tracking_uri(cfg["tracking"]["uri"]), "experiment": cfg["tracking"]["experiment"], "parent_run_id": None}
