"""Train: fit the model on the kept training rows, checkpointing (atomically) and streaming the
per-example training dynamics to Parquet, one file per epoch. Re-running resumes from the last
complete checkpoint."""

from __future__ import annotations

import hashlib
import json
import time

import pandas as pd
import torch

from exemplar.data.canonical import dataset_hash
from exemplar.errors import ExemplarError
from exemplar.models.classifier import input_statistics
from exemplar.models.factory import ModelConfig, build_classifier, model_meta
from exemplar.training.checkpoints import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from exemplar.training.config import TrainConfig
from exemplar.training.loop import EpochResult, evaluate, fit
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset, read_keep, split_rows, tensors
from tasks.layout import RunLayout


def fingerprint(cfg: dict, dataset_hash: str, train_ids: list[str]) -> str:
    """Identifies what a checkpoint was trained with, so a changed setting never resumes stale state."""
    payload = json.dumps([cfg["train"], cfg["model"], dataset_hash, train_ids], sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


def _resume_state(directory, expected: str) -> dict | None:
    path = latest_checkpoint(directory)
    if path is None:
        return None
    checkpoint = load_checkpoint(path)
    if checkpoint["meta"].get("fingerprint") != expected:
        raise ExemplarError(
            f"{directory} holds checkpoints from a different configuration or dataset. "
            "Fix: choose a new out_dir, or delete that checkpoints folder to retrain from scratch."
        )
    return checkpoint


def _dynamics_writer(layout: RunLayout, seed: int, ids: list[str], track: dict, run_id: str):
    def on_epoch(result: EpochResult) -> None:
        frame = pd.DataFrame({"id": ids, "epoch": result.epoch, "correct": result.correct, "label_probability": result.label_probability})
        write_parquet(frame, layout.dynamics(seed) / f"epoch_{result.epoch:04d}.parquet")
        metrics = {"lr": result.lr, "train_loss": result.train_loss, "train_accuracy": result.train_accuracy, "epoch_seconds": result.seconds}
        if result.test_accuracy is not None:
            metrics.update(test_loss=result.test_loss, test_accuracy=result.test_accuracy)
        tracking.log_metrics(track["uri"], run_id, metrics, step=result.epoch)

    return on_epoch


def population_seeds(cfg: dict) -> list[int]:
    """Seeds of the model population: train.seed, train.seed + 1, ... (train.population of them)."""
    first = int(cfg["train"]["seed"])
    return list(range(first, first + int(cfg["train"].get("population", 1))))


@stage_task("train")
def train(cfg: dict, run_dir: str, track: dict, seed: int | None = None) -> dict:
    """Train one model (seed defaults to ``train.seed``); returns final accuracies and timings."""
    layout = RunLayout(run_dir)
    settings = dict(cfg["train"])
    config = TrainConfig(**{**settings, **({"seed": seed} if seed is not None else {})})
    model_config = ModelConfig(**cfg["model"])
    params = {"train": cfg["train"], "model": cfg["model"], "seed": config.seed}
    with tracking.stage_run(track["uri"], track["experiment"], f"train-seed{config.seed}", track["parent_run_id"], params) as run_id:
        dataset = read_dataset(layout.dataset)
        x, y = tensors(dataset)
        keep = read_keep(layout.keep, dataset.table["id"])
        is_train = torch.from_numpy(split_rows(dataset, "train") & keep)
        is_test = torch.from_numpy(split_rows(dataset, "test") & keep)
        train_ids = dataset.table["id"][is_train.numpy()].tolist()
        meta = model_meta(model_config, dataset.info.modality, dataset.info.input_shape, dataset.info.num_classes)
        resumable = {k: v for k, v in settings.items() if k != "population"} | {"seed": config.seed}
        meta["fingerprint"] = fingerprint({**cfg, "train": resumable}, dataset_hash(dataset.table), train_ids)
        torch.manual_seed(config.seed)
        mean, std = input_statistics(x[is_train])
        model = build_classifier(model_config, dataset.info.modality, dataset.info.input_shape, dataset.info.num_classes, mean, std)
        resume = _resume_state(layout.checkpoints(config.seed), meta["fingerprint"])
        started = time.perf_counter()
        epochs = fit(
            model, x[is_train], y[is_train], config, test_x=x[is_test], test_y=y[is_test], resume=resume, meta=meta,
            save_checkpoint=lambda epoch, state: save_checkpoint(state, checkpoint_path(layout.checkpoints(config.seed), epoch)),
            on_epoch=_dynamics_writer(layout, config.seed, train_ids, track, run_id),
        )
        seconds = time.perf_counter() - started
        test_loss, test_accuracy = evaluate(model, x[is_test], y[is_test])
        train_loss, train_accuracy = evaluate(model, x[is_train], y[is_train])
        summary = {
            "seed": config.seed, "epochs_run": len(epochs), "resumed_from_epoch": int(resume["epoch"]) if resume else 0,
            "train_seconds": seconds, "final_test_accuracy": test_accuracy, "final_test_loss": test_loss,
            "final_train_accuracy": train_accuracy, "train_rows": int(is_train.sum()), "test_rows": int(is_test.sum()),
        }
        write_json(summary, layout.stage_metrics(f"train_seed{config.seed}"))
        tracking.log_metrics(track["uri"], run_id, summary)
        tracking.log_model(track["uri"], run_id, model, x[is_train][:2].numpy())
    return summary
