"""Stage flow: mask exact (and optionally near) duplicates into keep.parquet; report leakage and balance.

Run alone with `python -m flows.filter [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from tasks.filter import filter_rows
from tasks.run import grouped_stage


@flow(name="filter")
@grouped_stage
def filter_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    return filter_rows(cfg, run_dir, track)


if __name__ == "__main__":
    sys.exit(cli.run_stage("filter", filter_flow))
