"""Stage flow: every per-example score from the checkpoints and training dynamics (scores/signals.parquet)
and the TracIn proponents/opponents of each test example (influence_topk.parquet); see docs/scoring.md.
The out-of-sample signals first fit ``score.oos.folds`` cross-fitting folds, one Prefect task each on
the runner chosen with ``runner=`` (so ``runner=dask`` spreads them).

Run alone with `python -m flows.score [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from flows.runners import build_task_runner
from tasks.crossfit import combine, crossfit_fold, needs_crossfit
from tasks.run import grouped_stage
from tasks.score import score


@flow(name="score")
def _score(cfg: dict, run_dir: str, track: dict) -> dict:
    """The K cross-fitting folds as tasks on the configured runner, then every signal."""
    folds = int(cfg["score"].get("oos", {}).get("folds", 5))
    futures = [crossfit_fold.submit(cfg, run_dir, fold) for fold in range(folds)] if needs_crossfit(cfg) else []
    oos_probs = combine(cfg, run_dir, [future.result() for future in futures]) if futures else None
    return score(cfg, run_dir, track, oos_probs)


@grouped_stage
def score_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    """Score every example: cross-fitted folds spread by the task runner chosen with ``runner=``."""
    scored = _score.with_options(task_runner=build_task_runner(cfg))
    return scored(cfg, run_dir, track)


if __name__ == "__main__":
    sys.exit(cli.run_stage("score", score_flow))
