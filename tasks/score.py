"""Score: every per-example signal from the saved checkpoints and training dynamics, keyed by id
(``scores/signals.parquet``), plus TracIn proponents/opponents of each test example
(``influence_topk.parquet``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from exemplar.models.factory import classifier_from_checkpoint
from exemplar.scoring.allocator import keep_freed_memory
from exemplar.scoring.audit import CheckpointRef, ScoringData, score_examples
from exemplar.scoring.config import ScoreConfig, early_checkpoint_index
from exemplar.training.checkpoints import PATTERN, load_checkpoint
from tasks import progress, tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import checkpoint_files, read_dataset, read_keep, split_rows, tensors
from tasks.layout import RunLayout
from tasks.train import population_seeds


def _ref(path) -> CheckpointRef:
    def load():
        progress.advance(detail=f"score: checkpoint {path.parent.name}/{path.name}")
        checkpoint = load_checkpoint(path)
        return classifier_from_checkpoint(checkpoint), float(checkpoint["lr"])

    return CheckpointRef(int(PATTERN.match(path.name).group(1)), load)


def _other_seed_early(layout: RunLayout, cfg: dict, el2n_epoch: int) -> list[CheckpointRef]:
    """The early (EL2N/GraNd) checkpoint of every seed of the population but the first."""
    refs = []
    for seed in population_seeds(cfg)[1:]:
        candidates = [_ref(path) for path in checkpoint_files(layout, seed)]
        refs.append(candidates[early_checkpoint_index([ref.epoch for ref in candidates], el2n_epoch)])
    return refs


def _dynamics(layout: RunLayout, cfg: dict) -> list[pd.DataFrame]:
    """Every seed's dynamics, epochs 1..train.epochs; raises if any epoch is missing."""
    frames = []
    for seed in population_seeds(cfg):
        files = layout.complete_dynamics(seed, int(cfg["train"]["epochs"]))
        frames.append(pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True))
    return frames


@stage_task("score")
def score(cfg: dict, run_dir: str, track: dict, oos_probs: np.ndarray | None = None) -> dict:
    layout = RunLayout(run_dir)
    config = ScoreConfig(**cfg["score"])
    config.validate()
    allocator_tuned = keep_freed_memory()
    seed = int(cfg["train"]["seed"])
    with tracking.stage_run(track["uri"], track["experiment"], "score", track["parent_run_id"], {"score": cfg["score"]}) as run_id:
        dataset = read_dataset(layout.dataset)
        x, y = tensors(dataset)
        is_train = split_rows(dataset, "train") & read_keep(layout.keep, dataset.table["id"])  # rows trained on
        data = ScoringData(dataset.table["id"].to_numpy(dtype=object), x, y, is_train, oos_probs)
        checkpoints = [_ref(p) for p in checkpoint_files(layout, seed)]
        result = score_examples(data, checkpoints, config, _other_seed_early(layout, cfg, config.el2n_epoch), _dynamics(layout, cfg))
        write_parquet(result.scores, layout.signal_scores)
        if result.influence is not None:
            write_parquet(result.influence, layout.influence_topk)
        is_test = split_rows(dataset, "test")
        summary = {
            **result.summary,
            "test_accuracy": float(np.mean(result.scores["pred"].to_numpy()[is_test] == y.numpy()[is_test])),
            "signals": [f"{name}_score" for name in config.signals],
            "influence_rows": 0 if result.influence is None else len(result.influence),
            "allocator_tuned": allocator_tuned,
        }
        write_json(summary, layout.stage_metrics("score"))
        tracking.log_metrics(track["uri"], run_id, summary)
    return summary
