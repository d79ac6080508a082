"""Filter: exact-duplicate removal as a ``keep`` mask keyed by id (the data is never rewritten)."""

from __future__ import annotations

from exemplar.pruning.config import PruneConfig
from exemplar.pruning.dedup import exact_duplicate_mask, keep_all
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset
from tasks.layout import RunLayout


@stage_task("filter")
def filter_rows(cfg: dict, run_dir: str, track: dict) -> dict:
    layout = RunLayout(run_dir)
    config = PruneConfig(**cfg["prune"])
    with tracking.stage_run(track["uri"], track["experiment"], "filter", track["parent_run_id"], {"prune": cfg["prune"]}) as run_id:
        dataset = read_dataset(layout.dataset)
        mask = exact_duplicate_mask(dataset.table) if config.drop_exact_duplicates else keep_all(dataset.table)
        write_parquet(mask, layout.keep)
        summary = {
            "kept": int(mask["keep"].sum()),
            "dropped": int((~mask["keep"]).sum()),
            "dropped_by_reason": mask.loc[~mask["keep"], "drop_reason"].value_counts().to_dict(),
            "label_conflicts": int(mask["is_label_conflict"].sum()),
        }
        write_json(summary, layout.stage_metrics("filter"))
        tracking.log_metrics(track["uri"], run_id, summary)
    return summary
