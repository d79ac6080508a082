"""Stage flow: read and validate the input into dataset.parquet; unusable rows go to quarantine.parquet.

Run alone with `python -m flows.ingest [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from tasks.ingest import ingest
from tasks.run import grouped_stage


@flow(name="ingest")
@grouped_stage
def ingest_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    return ingest(cfg, run_dir, track)


if __name__ == "__main__":
    sys.exit(cli.run_stage("ingest", ingest_flow))
