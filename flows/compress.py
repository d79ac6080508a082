"""Stage flow: prune and quantize every model of the cross-fitted population (one vectorised ensemble
over models x levels), then the out-of-sample Compression Identified Exemplars and results:
scores/compression.parquet, compression.parquet, stages/compress.json.

Run alone with `python -m flows.compress [--params params.yaml] [overrides]` (as `dvc repro` does);
the pipeline calls it as a sub-flow.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows import cli
from tasks.compress import compress
from tasks.run import grouped_stage


@flow(name="compress")
@grouped_stage
def compress_flow(cfg: dict, run_dir: str, track: dict | None = None) -> dict:
    return compress(cfg, run_dir, track)


if __name__ == "__main__":
    sys.exit(cli.run_stage("compress", compress_flow))
