"""Stage flow: train one model per seed, with checkpoints (each run resumes from its last complete one).

``train.population`` models are trained with seeds ``train.seed, train.seed + 1, ...``; each seed is a
separate Prefect task, so a process-based task runner can spread them. The first seed's model is the
one the score stage reads; the compress stage uses the whole population.

Run alone with ``python -m flows.train [--params params.yaml] [overrides]`` (as ``dvc repro`` does).
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from tasks.run import standalone_tracking
from tasks.train import population_seeds, train


@flow(name="train")
def train_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    track = track or standalone_tracking(cfg)
    futures = [train.submit(cfg, run_dir, track, seed=seed) for seed in population_seeds(cfg)]
    summaries = [future.result() for future in futures]
    return {"seeds": summaries}


if __name__ == "__main__":
    sys.exit(cli.run_stage("train", train_flow))
