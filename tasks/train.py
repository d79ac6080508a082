"""Train: fit the model on the kept training rows, checkpointing (atomically) and streaming the
per-example training dynamics to Parquet, one file per epoch. Re-running resumes from the last
complete checkpoint.

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`train_distributed` trains each seed with DDP: every
rank trains, rank 0 alone writes checkpoints, dynamics, metrics and the MLflow run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
import torch
import torch.distributed as dist

from exemplar.data.canonical import dataset_hash
from exemplar.errors import ExemplarError
from exemplar.models.classifier import input_statistics
from exemplar.models.factory import ModelConfig, build_classifier, model_meta
from exemplar.training import distributed
from exemplar.training.checkpoints import load_checkpoint
from exemplar.training.config import TrainConfig
from exemplar.training.device import resolve_device, uses_amp
from exemplar.training.loop import EpochResult, evaluate, fit
from exemplar.training.schedules import steps_per_epoch
from tasks import progress, tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset, read_keep, split_rows, tensors
from tasks.layout import RunLayout, recorded_train


def fingerprint(cfg: dict, dataset_hash: str, train_ids: list[str]) -> str:
    """Identifies what a checkpoint was trained with, so a changed setting never resumes stale state."""
    payload = json.dumps([cfg["train"], cfg["model"], dataset_hash, train_ids], sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


def _resume_state(directory, expected: str, path) -> dict | None:
    """The checkpoint at `path` (RunLayout.resume_checkpoint), refused if trained on other settings."""
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
        write_parquet(frame, layout.dynamics_file(seed, result.epoch))
        metrics = {"lr": result.lr, "train_loss": result.train_loss, "train_accuracy": result.train_accuracy, "epoch_seconds": result.seconds}
        if result.test_accuracy is not None:
            metrics.update(test_loss=result.test_loss, test_accuracy=result.test_accuracy)
        tracking.log_metrics(track["uri"], run_id, metrics, step=result.epoch)

    return on_epoch


def population_seeds(cfg: dict) -> list[int]:
    """Seeds of the model population: train.seed, train.seed + 1, ... (train.population of them)."""
    first = int(cfg["train"]["seed"])
    return list(range(first, first + int(cfg["train"].get("population", 1))))


# --- progress on the terminal (never in CI, never in logs) -------------------------------------------

_PROGRESS_LOCK = threading.Lock()  # rich allows one live display at a time; parallel seeds stay quiet


is_interactive = progress.is_interactive


@contextlib.contextmanager
def progress_callbacks(config: TrainConfig, rows: int, enabled: bool) -> Iterator[tuple[Callable | None, Callable | None]]:
    """(on_batch, on_epoch) callbacks that drive a rich progress bar, or (None, None) when not shown."""
    if not enabled or not _PROGRESS_LOCK.acquire(blocking=False):
        yield None, None
        return
    steps = steps_per_epoch(rows, config.batch_size)
    try:
        with progress.display() as bar:  # the stage's live display (one at a time), or its own
            task = bar.add_task(f"train seed {config.seed}", total=config.epochs * steps)

            def on_batch(epoch: int, step: int) -> None:
                bar.update(task, completed=(epoch - 1) * steps + step)

            def on_epoch(result: EpochResult) -> None:
                shown = f" test acc {result.test_accuracy:.4f}" if result.test_accuracy is not None else ""
                bar.update(task, description=f"train seed {config.seed} epoch {result.epoch}/{config.epochs} loss {result.train_loss:.4f} acc {result.train_accuracy:.4f}{shown}")

            yield on_batch, on_epoch
    finally:
        _PROGRESS_LOCK.release()


def _both(first: Callable | None, second: Callable | None) -> Callable | None:
    if first is None or second is None:
        return first or second
    return lambda *args: (first(*args), second(*args))


# --- training one seed -----------------------------------------------------------------------------


@dataclass
class _Inputs:
    """Tensors and identities one seed's training run needs."""

    config: TrainConfig
    model: torch.nn.Module
    meta: dict
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_ids: list[str]


def _prepare(cfg: dict, layout: RunLayout, seed: int | None) -> _Inputs:
    """Read the kept rows, build the (seeded) model and the metadata stored in every checkpoint."""
    settings = dict(cfg["train"])
    config = TrainConfig(**{**settings, **({"seed": seed} if seed is not None else {})})
    model_config = ModelConfig(**cfg["model"])
    dataset = read_dataset(layout.dataset)
    x, y = tensors(dataset)
    keep = read_keep(layout.keep, dataset.table["id"])
    is_train = torch.from_numpy(split_rows(dataset, "train") & keep)
    is_test = torch.from_numpy(split_rows(dataset, "test") & keep)
    train_ids = dataset.table["id"][is_train.numpy()].tolist()
    info = dataset.info
    input_shape = tuple(x.shape[1:])  # tables: the encoded width, wider than the stored columns
    meta = model_meta(model_config, info.modality, input_shape, info.num_classes)
    resumable = {k: v for k, v in settings.items() if k not in TrainConfig.POPULATION_KEYS} | {"seed": config.seed}
    meta["fingerprint"] = fingerprint({**cfg, "train": resumable}, dataset_hash(dataset.table), train_ids)
    torch.manual_seed(config.seed)
    mean, std = input_statistics(x[is_train])
    model = build_classifier(model_config, info.modality, input_shape, info.num_classes, mean, std)
    return _Inputs(config, model, meta, x[is_train], y[is_train], x[is_test], y[is_test], train_ids)


@contextlib.contextmanager
def _stage_run(track: dict | None, cfg: dict, seed: int) -> Iterator[str | None]:
    """The seed's MLflow run, or None on DDP ranks other than 0 (they log nothing)."""
    if track is None:
        yield None
        return
    params = {"train": cfg["train"], "model": cfg["model"], "seed": seed}
    with tracking.stage_run(track["uri"], track["experiment"], f"train-seed{seed}", track["parent_run_id"], params) as run_id:
        yield run_id


def train_model(cfg: dict, run_dir: str, track: dict | None, seed: int | None = None, group: distributed.Distributed | None = None) -> dict:
    """Train one seed (resuming from its last checkpoint); `track` None means this rank writes nothing."""
    layout = RunLayout(run_dir)
    data = _prepare(cfg, layout, seed)
    seed = data.config.seed
    writes = track is not None
    with _stage_run(track, cfg, seed) as run_id:
        resume = _resume_state(layout.checkpoints(seed), data.meta["fingerprint"], layout.resume_checkpoint(seed))
        save = (lambda epoch, state: layout.save_checkpoint(seed, epoch, state)) if writes else None
        record = _dynamics_writer(layout, seed, data.train_ids, track, run_id) if writes else None
        with progress_callbacks(data.config, len(data.train_y), writes and is_interactive()) as (on_batch, show_epoch):
            started = time.perf_counter()
            epochs = fit(
                data.model, data.train_x, data.train_y, data.config, test_x=data.test_x, test_y=data.test_y,
                resume=resume, meta=data.meta, save_checkpoint=save, on_epoch=_both(record, show_epoch),
                on_batch=on_batch, distributed=group,
            )
            seconds = time.perf_counter() - started
        summary = _summary(data, epochs, resume, seconds, group)
        if writes:
            write_json(summary, layout.stage_metrics(f"train_seed{seed}"))
            tracking.log_metrics(track["uri"], run_id, summary)
            tracking.log_model(track["uri"], run_id, data.model, data.train_x[:2].numpy())
    return summary


def _summary(data: _Inputs, epochs: list[EpochResult], resume: dict | None, seconds: float, group) -> dict:
    device = group.device if group else resolve_device(data.config.device)
    data.model.to(device)  # evaluate where training ran, then hand back a CPU model
    test_loss, test_accuracy = evaluate(data.model, data.test_x, data.test_y, data.config.eval_batch_size)
    train_loss, train_accuracy = evaluate(data.model, data.train_x, data.train_y, data.config.eval_batch_size)
    data.model.cpu()
    summary = {
        "seed": data.config.seed, "epochs_run": len(epochs), "resumed_from_epoch": int(resume["epoch"]) if resume else 0,
        "train_seconds": seconds, "final_test_accuracy": test_accuracy, "final_test_loss": test_loss,
        "final_train_accuracy": train_accuracy, "train_rows": len(data.train_y), "test_rows": len(data.test_y),
        "device": str(device), "amp": uses_amp(data.config.amp, device),
        "world_size": group.world_size if group else 1, "torch_threads": torch.get_num_threads(),
    }
    if group is not None:
        summary["rank_weight_digests"] = _gather_digests(data.model)
    return summary


@stage_task("train")
def train(cfg: dict, run_dir: str, track: dict, seed: int | None = None) -> dict:
    """Train one model (seed defaults to ``train.seed``); returns final accuracies and timings."""
    return train_model(cfg, run_dir, track, seed)


# --- DDP under torchrun ----------------------------------------------------------------------------


def weight_digest(model: torch.nn.Module) -> str:
    """Hash of every parameter and buffer, to compare models across processes."""
    digest = hashlib.blake2b(digest_size=12)
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _gather_digests(model: torch.nn.Module) -> list[str]:
    """Every rank's weight digest (rank order); DDP must leave them all equal."""
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, weight_digest(model))
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP ranks ended with different weights: {digests}")
    return digests


def train_distributed(cfg: dict, run_dir: str, track: dict, environ=None) -> dict:
    """Train every seed of the population with DDP across torchrun's processes (seeds one after another)."""
    group = distributed.start(os.environ if environ is None else environ, resolve_device(cfg["train"]["device"]))
    try:
        main = group is None or group.is_main
        summaries = [
            recorded_train(run_dir, cfg, seed, lambda seed=seed: train_model(cfg, run_dir, track, seed, group)) if main
            else train_model(cfg, run_dir, None, seed, group) for seed in population_seeds(cfg)
        ]
    finally:
        distributed.stop(group)
    return {"seeds": summaries, "rank": group.rank if group else 0}
