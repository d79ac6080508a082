"""Where each stage reads and writes inside a run directory (one place, so stages agree), and the
run directory's integrity rules: which checkpoint a resumed training run may start from, and which
dynamics files make a complete set."""

from __future__ import annotations

import re
from pathlib import Path

from exemplar.errors import ExemplarError
from exemplar.training.checkpoints import PATTERN as CHECKPOINT_PATTERN
from exemplar.training.checkpoints import list_checkpoints

DYNAMICS_PATTERN = re.compile(r"^epoch_(\d{4,})\.parquet$")


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

    # --- training: a checkpoint and its epoch's dynamics are one unit ---------------------------------

    def dynamics_file(self, seed: int, epoch: int) -> Path:
        """The per-example dynamics of one (1-based) epoch of one seed."""
        return self.dynamics(seed) / f"epoch_{epoch:04d}.parquet"

    def dynamics_epochs(self, seed: int) -> list[int]:
        """Epochs whose dynamics file is complete on disk (temp files never match), ascending."""
        folder = self.dynamics(seed)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := DYNAMICS_PATTERN.match(p.name)))

    def resume_checkpoint(self, seed: int) -> Path | None:
        """The newest checkpoint a resumed run may start from: one whose epoch and every epoch before
        it have their dynamics on disk. A run killed between a checkpoint and that epoch's dynamics
        (or that lost a dynamics file) resumes earlier and redoes the epochs whose dynamics are missing."""
        have = set(self.dynamics_epochs(seed))
        usable = None
        for path in list_checkpoints(self.checkpoints(seed)):
            epoch = int(CHECKPOINT_PATTERN.match(path.name).group(1))
            if all(e in have for e in range(1, epoch + 1)):
                usable = path
        return usable

    def complete_dynamics(self, seed: int, epochs: int) -> list[Path]:
        """The dynamics files of epochs 1..`epochs` of one seed; raises naming any missing epoch
        (a scorer must never read a set with holes: forgetting and data maps would silently change)."""
        have = set(self.dynamics_epochs(seed))
        missing = [e for e in range(1, epochs + 1) if e not in have]
        if missing:
            raise ExemplarError(
                f"{self.dynamics(seed)} lacks the training dynamics of epoch(s) {missing} (of 1..{epochs}), so the "
                "scores would be computed from an incomplete history. Fix: rerun the train stage on this out_dir "
                "(it redoes the missing epochs), or start afresh with overwrite=true."
            )
        return [self.dynamics_file(seed, e) for e in range(1, epochs + 1)]
