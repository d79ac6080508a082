"""Report: the final ``scores.parquet``, ``report.html`` (self-contained), ``report.json`` and ``metrics.json``."""

from __future__ import annotations

import pyarrow.parquet as pq

from exemplar.report.assemble import assemble_scores, headline, thumbnails
from exemplar.report.config import ReportConfig
from exemplar.report.html import render_html
from exemplar.report.sections import compression_rows, influence_neighbours
from exemplar.report.summary import build_report
from tasks import tracking
from tasks._io import read_json, write_json, write_parquet, write_text
from tasks._prefect import stage_task
from tasks.datasets import read_dataset
from tasks.layout import RunLayout


def _stage_metrics(layout: RunLayout) -> dict:
    """Every stage's metrics JSON (stages/<name>.json), keyed by stage name."""
    return {path.stem: read_json(path) for path in sorted(layout.stages.glob("*.json"))}


def _influence(layout: RunLayout, scores, top_k: int) -> list[dict]:
    """Proponents/opponents of the test examples first in the test queue (``audit_rank_test``), if TracIn wrote them."""
    if not layout.influence_topk.exists() or "audit_rank_test" not in scores:
        return []
    test_ids = scores.dropna(subset=["audit_rank_test"]).sort_values("audit_rank_test")["id"].tolist()[: max(1, top_k // 3)]
    return influence_neighbours(pq.read_table(layout.influence_topk).to_pandas(), test_ids)


@stage_task("report")
def report(cfg: dict, run_dir: str, track: dict) -> dict:
    layout = RunLayout(run_dir)
    config = ReportConfig(**cfg["report"])
    with tracking.stage_run(track["uri"], track["experiment"], "report", track["parent_run_id"], {"report": cfg["report"]}) as run_id:
        dataset = read_dataset(layout.dataset)
        tables = [pq.read_table(p).to_pandas() for p in (layout.keep, layout.signal_scores, layout.compression_scores)]
        scores = assemble_scores(dataset, tables[0], tables[1:])
        stages = _stage_metrics(layout)
        metrics = headline(stages["ingest"], stages["filter"], stages["compress"], scores)
        content = build_report(scores, stages["ingest"], metrics, config.top_k, config.queue_size)
        content["stages"] = stages
        content["compression"] = compression_rows(stages["compress"])
        content["compression_note"] = stages["compress"].get("note")
        content["influence"] = _influence(layout, scores, config.top_k)
        shown = {e["id"] for e in content["review_queue"]} | {e["id"] for rows in content["top_by_signal"].values() for e in rows}
        shown |= {n["id"] for entry in content["influence"] for kind in ("proponent", "opponent") for n in entry[kind]}
        html = render_html(content, thumbnails(dataset, shown, config.thumbnail_pixels))
        write_parquet(scores, layout.scores)
        write_json(content, layout.report_json)
        write_text(html, layout.report_html)
        write_json({"headline": metrics, "stages": stages}, layout.metrics)
        write_json(metrics, layout.headline)
        tracking.log_metrics(track["uri"], run_id, metrics)
        for run in {run_id, track["parent_run_id"]} - {None}:
            for path in (layout.report_html, layout.report_json, layout.metrics):
                tracking.log_artifact(track["uri"], run, path, "report")
    return {"metrics": metrics, "review_queue": [e["id"] for e in content["review_queue"][:10]]}
