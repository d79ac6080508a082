"""Stage flow: scores.parquet, report.html, report.json and metrics.json.

Run alone with `python -m flows.report [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from tasks.report import report
from tasks.run import grouped_stage


@flow(name="report")
@grouped_stage
def report_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    return report(cfg, run_dir, track)


if __name__ == "__main__":
    sys.exit(cli.run_stage("report", report_flow))
