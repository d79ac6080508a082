"""Score: per-example signals from the saved checkpoints, keyed by id (``scores/signals.parquet``)."""

from __future__ import annotations

import numpy as np

from exemplar.models.factory import classifier_from_checkpoint
from exemplar.scoring.config import ScoreConfig, early_checkpoint_index
from exemplar.scoring.outputs import forward_outputs
from exemplar.scoring.registry import ScoringInputs, compute_scores
from exemplar.training.checkpoints import load_checkpoint
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import checkpoint_files, read_dataset, tensors
from tasks.layout import RunLayout


@stage_task("score")
def score(cfg: dict, run_dir: str, track: dict) -> dict:
    layout = RunLayout(run_dir)
    config = ScoreConfig(**cfg["score"])
    seed = int(cfg["train"]["seed"])
    with tracking.stage_run(track["uri"], track["experiment"], "score", track["parent_run_id"], {"score": cfg["score"]}) as run_id:
        dataset = read_dataset(layout.dataset)
        x, y = tensors(dataset)
        paths = checkpoint_files(layout, seed)
        checkpoints = [load_checkpoint(p) for p in paths]
        early = checkpoints[early_checkpoint_index([c["epoch"] for c in checkpoints], config.el2n_epoch)]
        final = forward_outputs(classifier_from_checkpoint(checkpoints[-1]), x, config.batch_size)
        early_logits = forward_outputs(classifier_from_checkpoint(early), x, config.batch_size).logits
        inputs = ScoringInputs(labels=y.numpy(), final_logits=final.logits, early_logits=early_logits)
        table = compute_scores(dataset.table["id"].to_numpy(), inputs, config.signals)
        table.insert(1, "pred", final.logits.argmax(axis=1))
        write_parquet(table, layout.signal_scores)
        is_test = (dataset.table["split"] == "test").to_numpy()
        summary = {
            "checkpoints": [int(c["epoch"]) for c in checkpoints],
            "el2n_checkpoint_epoch": int(early["epoch"]),
            "test_accuracy": float(np.mean(table["pred"].to_numpy()[is_test] == y.numpy()[is_test])),
            "signals": [f"{name}_score" for name in config.signals],
        }
        write_json(summary, layout.stage_metrics("score"))
        tracking.log_metrics(track["uri"], run_id, summary)
    return summary
