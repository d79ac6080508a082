"""Ingest: read the configured input, validate it, write the canonical ``dataset.parquet``."""

from __future__ import annotations

from exemplar.data.canonical import to_arrow
from exemplar.data.loaders import DataConfig, load_dataset
from exemplar.data.summary import describe_dataset
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.layout import RunLayout


@stage_task("ingest")
def ingest(cfg: dict, run_dir: str, track: dict) -> dict:
    """Load and validate `cfg['data']`; nothing is written unless the whole input is valid."""
    layout = RunLayout(run_dir)
    with tracking.stage_run(track["uri"], track["experiment"], "ingest", track["parent_run_id"], {"data": cfg["data"]}) as run_id:
        dataset = load_dataset(DataConfig(**cfg["data"]))
        summary = describe_dataset(dataset)
        write_parquet(to_arrow(dataset), layout.dataset)
        write_json(summary, layout.stage_metrics("ingest"))
        tracking.log_metrics(track["uri"], run_id, {"rows": summary["rows"], "train_rows": summary["train_rows"], "test_rows": summary["test_rows"]})
        tracking.set_tags(track["uri"], run_id, {"dataset_hash": summary["hash"]})
    return summary
