"""Stage flow: Train with checkpoints (resumes from the last complete one).

Run alone with `python -m flows.train [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from tasks.train import train
from tasks.run import standalone_tracking


@flow(name="train")
def train_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    return train(cfg, run_dir, track or standalone_tracking(cfg))


if __name__ == "__main__":
    sys.exit(cli.run_stage("train", train_flow))
