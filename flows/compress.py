"""Stage flow: prune and quantize every model of the population (one Prefect task per seed), then
the Compression Identified Exemplars and results: scores/compression.parquet, compression.parquet,
stages/compress.json.

The seed tasks run one at a time in this process: fine-tuning draws dropout masks from torch's
global random generator, so threads running side by side would make results depend on timing (and
torch already uses every core inside each task). A process-based task runner can spread them.

Run alone with `python -m flows.compress [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows import cli
from tasks.compress import compress, compress_seed
from tasks.run import grouped_stage
from tasks.train import population_seeds


@flow(name="compress", task_runner=ThreadPoolTaskRunner(max_workers=1))
@grouped_stage
def compress_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    futures = [compress_seed.submit(cfg, run_dir, seed) for seed in population_seeds(cfg)]
    records = [future.result() for future in futures]
    return compress(cfg, run_dir, track, records)


if __name__ == "__main__":
    sys.exit(cli.run_stage("compress", compress_flow))
