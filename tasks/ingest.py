"""Ingest: stream the configured input into the canonical ``dataset.parquet`` and put unusable rows
in ``quarantine.parquet`` (with the reason). An unusable input raises before anything is written:
the dataset file is written to a temp file and renamed only after the final checks pass."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from exemplar.data.columns import log_warnings
from exemplar.data.config import DataConfig
from exemplar.data.ingest import IngestStream
from exemplar.data.loaders import open_stream
from exemplar.data.quarantine import quarantine_arrow
from tasks import progress, tracking
from tasks._io import _atomic, write_json, write_parquet
from tasks._prefect import stage_task
from tasks.layout import RunLayout


def write_stream(stream: IngestStream, path: Path) -> Path:
    """Write the stream's batches to `path` atomically (nothing at `path` if the stream raises)."""

    def write(temp: Path) -> None:
        with pq.ParquetWriter(temp, stream.schema) as writer:
            for table in stream.batches():
                writer.write_table(table)
                progress.advance(table.num_rows, detail="ingest: rows read")

    return _atomic(path, write)


def log_dataset_input(uri: str, run_id: str, summary: dict, path: Path) -> None:
    """Record the canonical table as the run's input with ``mlflow.data`` (digest = dataset hash)."""
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    dataset = MetaDataset(LocalArtifactDatasetSource(str(Path(path).resolve())), name=f"exemplar:{summary['source']}", digest=summary["hash"])
    tags = [InputTag("mlflow.data.context", "ingest")]
    tracking.client(uri).log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags)])


def _table_numbers(summary: dict) -> dict:
    """Tables: rows with a missing value and the number of column warnings (logged to MLflow)."""
    if "column_warnings" not in summary:
        return {}
    return {"rows_with_missing_values": summary["rows_with_missing_values"], "column_warnings": len(summary["column_warnings"])}


@stage_task("ingest")
def ingest(cfg: dict, run_dir: str, track: dict) -> dict:
    """Load `cfg['data']` into run_dir/dataset.parquet and run_dir/quarantine.parquet; returns the summary."""
    layout = RunLayout(run_dir)
    with tracking.stage_run(track["uri"], track["experiment"], "ingest", track["parent_run_id"], {"data": cfg["data"]}) as run_id:
        stream = open_stream(DataConfig(**cfg["data"]))
        write_stream(stream, layout.dataset)
        write_parquet(quarantine_arrow(stream.quarantine()), layout.quarantine)
        summary = stream.summary()
        log_warnings(summary.get("column_warnings", []), summary["source"])
        write_json(summary, layout.stage_metrics("ingest"))
        numbers = ("rows_read", "rows", "train_rows", "test_rows", "num_classes", "quarantined", "quarantined_by_reason", "images_resized", "images_recoloured")
        tracking.log_metrics(track["uri"], run_id, {k: summary[k] for k in numbers} | _table_numbers(summary))
        tracking.set_tags(track["uri"], run_id, {"dataset_hash": summary["hash"], "dataset_source": summary["source"]})
        log_dataset_input(track["uri"], run_id, summary, layout.dataset)
    return summary
