"""Compare two tracked runs: config differences and metric deltas, from MLflow.

    exemplar compare RUN_A RUN_B            # or: python -m flows.compare RUN_A RUN_B
    python -m flows.compare RUN_A RUN_B --experiment exemplar --tracking-uri http://127.0.0.1:5000

A run is given by its id or its name (the latest run of that name): a pipeline run is named after its
``out_dir``, a ``dvc exp run`` after its experiment. Compare the parent runs: they carry the whole
resolved config as params and the headline metrics.
"""

from __future__ import annotations

import argparse
import sys

import flows  # noqa: F401  (quiet, offline defaults before mlflow loads)
from exemplar.errors import ExemplarError
from flows.cli import print_error
from tasks import tracking
from tasks.compare import find_run, render
from tasks.tracking import DEFAULT_EXPERIMENT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exemplar compare", description=__doc__.splitlines()[0])
    parser.add_argument("run_a", help="run id or name")
    parser.add_argument("run_b", help="run id or name")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment (for names)")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    args = parser.parse_args(argv)
    uri = tracking.tracking_uri(args.tracking_uri)
    try:
        print(render(find_run(uri, args.experiment, args.run_a), find_run(uri, args.experiment, args.run_b)))
    except ExemplarError as error:
        print_error(error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
