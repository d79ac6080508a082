"""The whole DAG: ingest -> filter -> train -> score -> compress -> report.

    python -m flows.pipeline [hydra overrides]

e.g. ``python -m flows.pipeline data=parquet data.path=data.parquet out_dir=runs/demo train.epochs=5``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow

from flows import cli
from flows.compress import compress_flow
from flows.filter import filter_flow
from flows.ingest import ingest_flow
from flows.report import report_flow
from flows.score import score_flow
from flows.train import train_flow
from tasks.run import close_pipeline_run, open_pipeline_run


@flow(name="exemplar-pipeline")
def pipeline_flow(cfg: dict, run_dir: str) -> dict:
    """Run every stage on `cfg` into `run_dir`, under one parent MLflow run."""
    track = open_pipeline_run(cfg, run_dir)
    try:
        ingest_flow(cfg, run_dir, track)
        filter_flow(cfg, run_dir, track)
        train_flow(cfg, run_dir, track)
        score_flow(cfg, run_dir, track)
        compress_flow(cfg, run_dir, track)
        result = report_flow(cfg, run_dir, track)
    except BaseException:
        close_pipeline_run(track, "FAILED")
        raise
    close_pipeline_run(track, "FINISHED", result["metrics"])
    return {**result, "mlflow_run_id": track["parent_run_id"]}


def print_headline(result: dict, out_dir: Path) -> None:
    metrics = result["metrics"]
    try:
        shown = out_dir.relative_to(Path.cwd())
    except ValueError:
        shown = out_dir
    print(f"report: {shown / 'report.html'}")
    print(f"scores: {shown / 'scores.parquet'}   metrics: {shown / 'metrics.json'}")
    for key in sorted(metrics):
        value = metrics[key]
        print(f"  {key:<24} {value:.4f}" if isinstance(value, float) else f"  {key:<24} {value}")
    print(f"  review first: {', '.join(result['review_queue'][:5])}")
    print(f"  mlflow run: {result['mlflow_run_id']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:  # `exemplar compare RUN_A RUN_B`
        from flows.compare import main as compare

        return compare(argv[1:])
    return cli.main("pipeline", lambda cfg, out_dir: pipeline_flow(cfg, str(out_dir)), print_headline, argv)


if __name__ == "__main__":
    sys.exit(main())
