"""The pruning curve: test accuracy after retraining on the rows each pruning policy keeps, for
``prune.curve.fractions`` x ``prune.curve.scores`` x directions x ``prune.curve.seeds`` (docs/pruning.md).

    python -m flows.prune_curve out_dir=runs/curve [overrides, e.g. prune.curve.seeds=[0,1,2,3,4]]

Ingests and filters the data into ``out_dir``, scores the candidate training rows once (a proxy run,
or ``prune.scores_from``), then trains every point as a Prefect task on the ``runner=`` task runner
(``runner=dask`` spreads them over Dask workers), each a nested MLflow run under one parent.
Writes ``prune_curve.parquet``, ``prune_curve.json``, ``prune_curve.svg`` and ``prune_curve.png``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

from prefect import flow

from exemplar.pruning.config import PruneConfig
from exemplar.pruning.curve import curve_points
from flows import cli
from flows.filter import filter_flow
from flows.ingest import ingest_flow
from flows.runners import build_task_runner
from tasks.prune_curve import PLOT_FILES, TABLE_FILE, open_curve_run, score_candidates, train_point, without_policy, write_curve
from tasks.run import close_pipeline_run


@flow(name="prune-curve")
def _curve(cfg: dict, run_dir: str) -> dict:
    started = time.perf_counter()
    track = open_curve_run(cfg, run_dir)
    try:
        ingest_flow(cfg, run_dir, track)
        filter_flow(cfg, run_dir, track)
        scoring = score_candidates(cfg, run_dir, track)
        points = curve_points(PruneConfig(**cfg["prune"]).curve_config())
        futures = [train_point.submit(cfg, run_dir, asdict(point), track) for point in points]
        records = [future.result() for future in futures]
        extra = {"scoring_seconds": scoring["seconds"], "flow_seconds": time.perf_counter() - started}
        result = write_curve(cfg, run_dir, records, track, extra)
    except BaseException:
        close_pipeline_run(track, "FAILED")
        raise
    close_pipeline_run(track, "FINISHED", {"points_trained": result["points_trained"], "flow_seconds": result["flow_seconds"]})
    return {**result, "mlflow_run_id": track["parent_run_id"]}


def curve_runner(cfg: dict):
    """``runner=threads``: a pool of ``prune.curve.workers`` threads; ``runner=dask``: as configured."""
    curve = PruneConfig(**cfg["prune"]).curve_config()
    runner = cfg.get("runner") or {"name": "threads"}
    if runner.get("name", "threads") == "threads":
        runner = {**runner, "max_workers": curve.workers}
    return build_task_runner({**cfg, "runner": runner})


def prune_curve_flow(cfg: dict, run_dir: str) -> dict:
    """Run the curve on its task runner with ``prune.curve.torch_threads`` torch threads (restored after);
    the single-run policy in ``prune`` is switched off (each point applies its own)."""
    import torch

    cfg = without_policy(cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(PruneConfig(**cfg["prune"]).curve_config().torch_threads)
    try:
        return _curve.with_options(task_runner=curve_runner(cfg))(cfg, run_dir)
    finally:
        torch.set_num_threads(threads)


def print_result(result: dict, out_dir: Path) -> None:
    print(f"curve: {out_dir / TABLE_FILE}   plot: {out_dir / PLOT_FILES[0]}")
    print(f"  points trained {result['points_trained']} in {result['flow_seconds']:.0f} s (scoring {result['scoring_seconds']:.0f} s)")
    for fraction, compared in result["compare"].items():
        if compared:
            best, random = compared["best"], compared["random"]
            print(f"  kept {fraction}: random {random['mean']:.4f} +- {random['std']:.4f}; best {best['score']} ({best['direction']}) "
                  f"{best['mean']:.4f} +- {best['std']:.4f} ({best['minus_random']:+.4f})")
    print(f"  mlflow run: {result['mlflow_run_id']}")


def main(argv: list[str] | None = None) -> int:
    return cli.main("prune_curve", lambda cfg, out_dir: prune_curve_flow(cfg, str(out_dir)), print_result, argv)


if __name__ == "__main__":
    sys.exit(main())
