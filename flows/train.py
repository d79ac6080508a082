"""Stage flow: train one model per seed, with checkpoints (each run resumes from its last complete one).

``train.population`` models are trained with seeds ``train.seed, train.seed + 1, ...``; each seed is a
separate Prefect task on the task runner chosen by ``runner=`` (``conf/runner/``), so seeds can be
spread over threads or a Dask cluster. The first seed's model is the one the score stage reads; the
compress stage uses the whole population.

Run alone with ``python -m flows.train [--params params.yaml] [overrides]`` (as ``dvc repro`` does).
Under ``torchrun --nproc_per_node N -m flows.train [overrides]`` the same command trains each seed
with DDP across the N processes, without Prefect (see docs/training.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prefect import flow

from flows import cli
from exemplar.training.distributed import world_from_environment
from flows.runners import build_task_runner
from tasks import progress
from tasks.run import grouped_stage, standalone_tracking
from tasks.train import population_seeds, train, train_distributed


@flow(name="train")
def _train_seeds(cfg: dict, run_dir: str, track: dict) -> dict:
    futures = [train.submit(cfg, run_dir, track, seed=seed) for seed in population_seeds(cfg)]
    return {"seeds": [future.result() for future in futures]}


@grouped_stage
def train_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    """Train every seed of the population as Prefect tasks on the configured task runner."""
    seeded = _train_seeds.with_options(task_runner=build_task_runner(cfg))
    return seeded(cfg, run_dir, track)


def is_torchrun(environ=None) -> bool:
    """Whether this process is one of several that torchrun started."""
    return world_from_environment(os.environ if environ is None else environ)[2] > 1


def _distributed_stage(cfg: dict, out_dir: Path) -> dict:
    return train_distributed(cfg, str(out_dir), standalone_tracking(cfg))


def _print_on_rank_zero(result: dict, out_dir: Path) -> None:
    if result.get("rank", 0) == 0:
        print(f"train    {progress.summary('train', result)}  -> {out_dir}")


def main(argv: list[str] | None = None) -> int:
    if is_torchrun():
        return cli.main("train", _distributed_stage, _print_on_rank_zero, argv)
    return cli.run_stage("train", train_flow, argv)


if __name__ == "__main__":
    sys.exit(main())
