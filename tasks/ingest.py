"""Ingest: stream the configured input into the canonical ``dataset.parquet`` and put unusable rows
in ``quarantine.parquet`` (with the reason). An unusable input raises before anything is written:
the dataset file is written to a temp file and renamed only after the final checks pass."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from exemplar.data.columns import log_warnings
from exemplar.data.config import DataConfig
from exemplar.data.decisions import Relabeller, check_labels, empty_record, read_decisions
from exemplar.data.ingest import IngestStream
from exemplar.data.loaders import open_stream
from exemplar.data.quarantine import quarantine_arrow
from tasks import progress, tracking
from tasks._io import _atomic, write_json, write_parquet
from tasks._prefect import stage_task
from tasks.layout import RunLayout


def write_stream(stream: IngestStream, path: Path, relabeller: Relabeller | None = None) -> Path:
    """Write the stream's batches to `path` atomically (nothing at `path` if the stream raises), applying
    the reviewer's relabels when given (and raising, before the rename, if it names unknown ids)."""

    def write(temp: Path) -> None:
        with pq.ParquetWriter(temp, stream.schema) as writer:
            for table in stream.batches():
                writer.write_table(relabeller(table) if relabeller else table)
                progress.advance(table.num_rows, detail="ingest: rows read")
        if relabeller:
            relabeller.check_ids(stream.quarantine())

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


def _relabeller(path: str | None, class_names: list[str]) -> Relabeller | None:
    """The reviewer's decisions (``decisions=``), checked against the class names before pass 2."""
    if not path:
        return None
    decisions = read_decisions(path)
    check_labels(decisions, class_names)
    return Relabeller(decisions, class_names)


@stage_task("ingest")
def ingest(cfg: dict, run_dir: str, track: dict) -> dict:
    """Load `cfg['data']` into run_dir/dataset.parquet and run_dir/quarantine.parquet; returns the summary."""
    layout = RunLayout(run_dir)
    with tracking.stage_run(track["uri"], track["experiment"], "ingest", track["parent_run_id"], {"data": cfg["data"], "decisions": cfg.get("decisions")}) as run_id:
        stream = open_stream(DataConfig(**cfg["data"]))
        relabeller = _relabeller(cfg.get("decisions"), stream.info.class_names)
        write_stream(stream, layout.dataset, relabeller)
        write_parquet(quarantine_arrow(stream.quarantine()), layout.quarantine)
        write_parquet(relabeller.record() if relabeller else empty_record(), layout.decisions)
        summary = relabeller.summarize(stream.summary()) if relabeller else stream.summary()
        log_warnings(summary.get("column_warnings", []), summary["source"])
        write_json(summary, layout.stage_metrics("ingest"))
        numbers = ["rows_read", "rows", "train_rows", "test_rows", "num_classes", "quarantined", "quarantined_by_reason", "images_resized", "images_recoloured"]
        numbers += ["decisions_relabelled"] if relabeller else []
        tracking.log_metrics(track["uri"], run_id, {k: summary[k] for k in numbers} | _table_numbers(summary))
        tracking.set_tags(track["uri"], run_id, {"dataset_hash": summary["hash"], "dataset_source": summary["source"]})
        log_dataset_input(track["uri"], run_id, summary, layout.dataset)
        if relabeller:  # the reviewer's file as given, next to the record of what was applied
            for path in (Path(cfg["decisions"]).expanduser(), layout.decisions):
                tracking.log_artifact(track["uri"], run_id, path, "decisions")
    return summary
