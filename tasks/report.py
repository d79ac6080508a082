"""Report: the final ``scores.parquet``, ``report.html`` (self-contained), ``report.json`` and ``metrics.json``;
the headline and the top of the queue as Prefect artifacts; all three files logged to MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from exemplar.report.assemble import assemble_scores, headline, headline_markdown, queue_table, thumbnails, training_curves
from exemplar.report.classes import class_accuracy
from exemplar.report.config import ReportConfig
from exemplar.report.figures import report_figures
from exemplar.report.html import render_html
from exemplar.report.sections import compression_rows
from exemplar.report.summary import ReportInputs, build_report, shown_ids
from tasks import tracking
from tasks._io import read_json, write_json, write_parquet, write_text
from tasks._prefect import stage_task
from tasks.datasets import read_dataset
from tasks.layout import RunLayout

PRUNE_CURVE = "prune_curve.parquet"  # written by the pruning-curve flow (flows/prune_curve.py) when it was run


def _stage_metrics(layout: RunLayout) -> dict:
    """Every stage's metrics JSON (stages/<name>.json), keyed by stage name."""
    return {path.stem: read_json(path) for path in sorted(layout.stages.glob("*.json"))}


def _read(path: Path) -> pd.DataFrame | None:
    return pq.read_table(path).to_pandas() if path.exists() else None


def _curves(layout: RunLayout) -> pd.DataFrame:
    seeds = sorted(int(p.name.removeprefix("seed_")) for p in layout.dynamics_root.glob("seed_*")) if layout.dynamics_root.exists() else []
    return training_curves({s: [pq.read_table(p).to_pandas() for p in sorted(layout.dynamics(s).glob("epoch_*.parquet"))] for s in seeds})


def previous_scores(config: ReportConfig, layout: RunLayout, decisions: str | None) -> Path | None:
    """The earlier run's scores.parquet: report.previous_scores, else the one this run is about to
    replace, else the one beside the decisions file (the run the reviewer exported from)."""
    candidates = [config.previous_scores, layout.scores, Path(decisions).parent / "scores.parquet" if decisions else None]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def load_inputs(cfg: dict, layout: RunLayout, config: ReportConfig) -> tuple[ReportInputs, object]:
    dataset = read_dataset(layout.dataset)
    tables = [pq.read_table(p).to_pandas() for p in (layout.keep, layout.signal_scores, layout.compression_scores)]
    recipe = config.recipe()
    scores = assemble_scores(dataset, tables[0], tables[1:], recipe)
    stages = _stage_metrics(layout)
    previous = previous_scores(config, layout, cfg.get("decisions"))
    info = dataset.info
    inputs = ReportInputs(
        scores=scores, dataset=stages["ingest"], metrics=headline(stages["ingest"], stages["filter"], stages["compress"], scores),
        class_names=list(info.class_names), features=dataset.table[["id", *info.feature_names]] if info.modality == "table" else None,
        models=_read(layout.compression_results) if layout.compression_results.exists() else pd.DataFrame(),
        quarantine=_read(layout.quarantine) if layout.quarantine.exists() else pd.DataFrame(),
        filter_summary=stages["filter"], curves=_curves(layout), prune_curve=_read(layout.root / PRUNE_CURVE),
        decisions=_read(layout.decisions) if layout.decisions.exists() else pd.DataFrame(),
        previous=_read(previous) if previous else None, previous_source=str(previous or ""),
        influence_topk=_read(layout.influence_topk), recipe=recipe,
    )
    return inputs, dataset


def _publish(content: dict) -> None:
    """The headline and the top of the queue as Prefect artifacts (visible in the Prefect UI)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(markdown=headline_markdown(content), key="exemplar-report", description="exemplar audit headline")
    create_table_artifact(table=queue_table(content, 20), key="exemplar-review-queue", description="top of the review queue (training rows)")


@stage_task("report")
def report(cfg: dict, run_dir: str, track: dict) -> dict:
    layout = RunLayout(run_dir)
    config = ReportConfig(**cfg["report"])
    with tracking.stage_run(track["uri"], track["experiment"], "report", track["parent_run_id"], {"report": cfg["report"]}) as run_id:
        inputs, dataset = load_inputs(cfg, layout, config)
        content = build_report(inputs, config.top_k, config.queue_size, config.why_top_percent)
        stages = _stage_metrics(layout)
        content.update(stages=stages, compression=compression_rows(stages["compress"]), compression_note=stages["compress"].get("note"))
        figures = report_figures(inputs.scores, content, inputs.curves, class_accuracy(inputs.models, inputs.class_names), inputs.prune_curve)
        html = render_html(content, figures, thumbnails(dataset, shown_ids(content), config.thumbnail_pixels))
        write_parquet(inputs.scores, layout.scores)
        write_json(content, layout.report_json)
        write_text(html, layout.report_html)
        write_json({"headline": inputs.metrics, "stages": stages}, layout.metrics)
        write_json(inputs.metrics, layout.headline)
        tracking.log_metrics(track["uri"], run_id, inputs.metrics)
        for run in {run_id, track["parent_run_id"]} - {None}:
            for path in (layout.report_html, layout.report_json, layout.metrics):
                tracking.log_artifact(track["uri"], run, path, "report")
        _publish(content)
    return {"metrics": inputs.metrics, "review_queue": [e["id"] for e in content["review_queue"][:10]]}
