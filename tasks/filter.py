"""Filter: exact and near duplicates as a ``keep`` mask keyed by id (the data is never rewritten),
with label conflicts, split leakage and class balance reported in stages/filter.json."""

from __future__ import annotations

import pyarrow.parquet as pq

from exemplar.data.decisions import apply_removals
from exemplar.pruning.config import PruneConfig
from exemplar.pruning.filtering import filter_dataset
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset
from tasks.layout import RunLayout


@stage_task("filter")
def filter_rows(cfg: dict, run_dir: str, track: dict) -> dict:
    """Write run_dir/keep.parquet and stages/filter.json; raises if too few training rows are kept."""
    layout = RunLayout(run_dir)
    config = PruneConfig(**cfg["prune"])
    with tracking.stage_run(track["uri"], track["experiment"], "filter", track["parent_run_id"], {"prune": cfg["prune"]}) as run_id:
        mask, summary = filter_dataset(read_dataset(layout.dataset), config)
        if layout.decisions.exists():  # the reviewer's removals (decisions=), recorded by ingest
            mask, summary = apply_removals(mask, summary, pq.read_table(layout.decisions).to_pandas())
        write_parquet(mask, layout.keep)
        write_json(summary, layout.stage_metrics("filter"))
        # per-class counts stay in filter.json: class names need not be valid MLflow metric names
        numbers = {k: v for k, v in summary.items() if k != "class_balance"}
        tracking.log_metrics(track["uri"], run_id, {**numbers, "imbalance_ratio": summary["class_balance"]["imbalance_ratio"]})
    return summary
