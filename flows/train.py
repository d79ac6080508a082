"""Stage flow: train one model per seed, with checkpoints (each run resumes from its last complete one).

``train.population`` models are trained with seeds ``train.seed, train.seed + 1, ...``, and the
cross-fitted models (``train.crossfit_repeats`` x ``train.crossfit_folds``) that give the compress stage
out-of-sample predictions for every row. With the threads runner and a model without batch norm
(``train.ensemble=true``, the default) each of the two populations trains as one vectorised ensemble
(one Prefect task each); otherwise each seed is a separate Prefect task on the task runner chosen by
``runner=`` (``conf/runner/``), so seeds can be spread over threads or a Dask cluster. The score stage
reads the seeds; the compress stage the cross-fitted models.

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
from flows.runners import runner_config
from tasks import progress
from tasks.population import train_crossfit, train_seeds, uses_ensemble
from tasks.run import grouped_stage, standalone_tracking
from tasks.train import population_seeds, train, train_distributed


@flow(name="train")
def _train_seeds(cfg: dict, run_dir: str, track: dict) -> dict:
    if uses_ensemble(cfg) and runner_config(cfg).name == "threads":
        seeds = train_seeds(cfg, run_dir, track)["seeds"]
    else:
        futures = [train.submit(cfg, run_dir, track, seed=seed) for seed in population_seeds(cfg)]
        seeds = [future.result() for future in futures]
    return {"seeds": seeds, "crossfit": train_crossfit(cfg, run_dir, track)}


@grouped_stage
def train_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    """Train every seed of the population as Prefect tasks on the configured task runner."""
    seeded = _train_seeds.with_options(task_runner=build_task_runner(cfg))
    return seeded(cfg, run_dir, track)


def is_torchrun(environ=None) -> bool:
    """Whether this process is one of several that torchrun started."""
    return world_from_environment(os.environ if environ is None else environ)[2] > 1


def _distributed_stage(cfg: dict, out_dir: Path) -> dict:
    """DDP for the seeds; then rank 0 trains the (small) cross-fitted models in this process."""
    track = standalone_tracking(cfg)
    result = train_distributed(cfg, str(out_dir), track)
    if result.get("rank", 0) == 0:
        result["crossfit"] = train_crossfit.fn(cfg, str(out_dir), track)
    return result


def _print_on_rank_zero(result: dict, out_dir: Path) -> None:
    if result.get("rank", 0) == 0:
        print(f"train    {progress.summary('train', result)}  -> {out_dir}")


def main(argv: list[str] | None = None) -> int:
    if is_torchrun():
        return cli.main("train", _distributed_stage, _print_on_rank_zero, argv)
    return cli.run_stage("train", train_flow, argv)


if __name__ == "__main__":
    sys.exit(main())
