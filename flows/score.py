"""Stage flow: every per-example score from the checkpoints and training dynamics (scores/signals.parquet)
and the TracIn proponents/opponents of each test example (influence_topk.parquet); see docs/scoring.md.

Run alone with `python -m flows.score [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from tasks.score import score
from tasks.run import grouped_stage


@flow(name="score")
@grouped_stage
def score_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    return score(cfg, run_dir, track)


if __name__ == "__main__":
    sys.exit(cli.run_stage("score", score_flow))
