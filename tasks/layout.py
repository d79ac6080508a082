"""Where each stage reads and writes inside a run directory (one place, so stages agree)."""

from __future__ import annotations

from pathlib import Path


class RunLayout:
    """Paths of every file the pipeline produces under `root`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    dataset = property(lambda self: self.root / "dataset.parquet")
    keep = property(lambda self: self.root / "keep.parquet")
    checkpoints_root = property(lambda self: self.root / "checkpoints")
    dynamics_root = property(lambda self: self.root / "dynamics")
    signal_scores = property(lambda self: self.root / "scores" / "signals.parquet")
    compression_scores = property(lambda self: self.root / "scores" / "compression.parquet")
    scores = property(lambda self: self.root / "scores.parquet")
    report_html = property(lambda self: self.root / "report.html")
    report_json = property(lambda self: self.root / "report.json")
    metrics = property(lambda self: self.root / "metrics.json")

    def checkpoints(self, seed: int) -> Path:
        return self.checkpoints_root / f"seed_{seed}"

    def dynamics(self, seed: int) -> Path:
        return self.dynamics_root / f"seed_{seed}"

    stages = property(lambda self: self.root / "stages")

    def stage_metrics(self, stage: str) -> Path:
        return self.stages / f"{stage}.json"

    influence_topk = property(lambda self: self.root / "influence_topk.parquet")

    # compression stage (appended)
    compression_results = property(lambda self: self.root / "compression.parquet")
    compressed_root = property(lambda self: self.root / "compressed")
    # ingest stage (appended): rows that could not be used, with the reason
    quarantine = property(lambda self: self.root / "quarantine.parquet")
    # reviewer decisions applied by ingest (relabels) and filter (removals), read by the report
    decisions = property(lambda self: self.root / "decisions.parquet")
