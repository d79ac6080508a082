"""Scheduled runs: serve the pipeline as a Prefect deployment with a cron schedule.

    prefect server start --host 127.0.0.1 &              # a real server (the temporary one cannot schedule)
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m flows.serve --cron "0 3 * * *" --name nightly data=parquet data.path=/data/latest.parquet

Each scheduled run composes the configuration with the given overrides at run time and writes a new
``runs/<timestamp>`` folder (relative to the directory the server process was started in).
"""

from __future__ import annotations

import argparse
import sys

from prefect import flow

from flows.cli import load_config
from flows.config import resolve_out_dir
from flows.pipeline import pipeline_flow


@flow(name="exemplar-scheduled")
def scheduled_pipeline(overrides: list[str] | None = None) -> dict:
    """Compose the config from `overrides` and run the whole pipeline into a fresh run folder."""
    cfg = load_config(list(overrides or []))
    return pipeline_flow(cfg, str(resolve_out_dir(cfg)))


def build_deployment(name: str, cron: str, overrides: list[str]):
    """The deployment object (validates the cron expression and the overrides up front)."""
    load_config(overrides)
    return scheduled_pipeline.to_deployment(name=name, cron=cron, parameters={"overrides": overrides})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--cron", required=True, help='cron schedule, e.g. "0 3 * * *" (03:00 every day)')
    parser.add_argument("--name", default="exemplar-nightly", help="deployment name")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every scheduled run")
    args = parser.parse_args(argv)
    from prefect import serve

    serve(build_deployment(args.name, args.cron, args.overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
