"""Compress a whole (cross-fitted) population at every level and measure each copy.

Level ``dense`` is each model fine-tuned like the pruned ones with sparsity 0, so dense-vs-compressed
differences come from compression alone; pruning levels are fine-tuned on the same rows, epochs,
schedule and batch order (one vectorised ensemble over models x levels, see
:mod:`exemplar.compression.vectorised`; models with batch norm go one at a time); int8 levels quantize
the fine-tuned dense model. Every model predicts every row; the caller keeps only the predictions of
models that held a row out (``held_out``) for CIE.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from exemplar.compression.config import CompressConfig, level_tag, quantization_tag
from exemplar.compression.finetune import prune_finetune
from exemplar.compression.measure import class_accuracy, latency_ms, predict_logits, serialized_bytes
from exemplar.compression.quantize import architecture_key, export_for_static_int8, quantize_dynamic_int8, quantize_static_int8
from exemplar.compression.schedule import PruneSchedule, gradual_schedule
from exemplar.compression.vectorised import finetune_population
from exemplar.training.config import TrainConfig
from exemplar.training.ensemble import Member, step_groups, supports_ensemble
from exemplar.training.schedules import steps_per_epoch


@dataclass
class PopulationData:
    """(N, ...) inputs and (N,) labels of every row; per model m its seed, the (n_m,) indices of the
    rows it trained on (fine-tuning rows) and the (c,) calibration rows; (M, N) bool `held_out`;
    (N,) bool test rows."""

    x: torch.Tensor
    y: torch.Tensor
    is_test: np.ndarray
    held_out: np.ndarray
    seeds: list[int]
    rows: list[torch.Tensor]
    calibration: list[np.ndarray]
    num_classes: int


@dataclass
class Level:
    tag: str  # "dense", "p50", "int8_dynamic", ...
    kind: str  # "dense", "pruning" or "quantization"
    predictions: np.ndarray  # (M, N) predicted labels
    metrics: list[dict]  # per model (see measure_predictions)
    details: list[dict]  # per model: achieved sparsity, or which layers were quantized


def prune_schedule(config: CompressConfig, sparsity: float, finetune_rows: int, finetune: TrainConfig) -> PruneSchedule:
    """One-shot (mask fixed while fine-tuning) or Zhu & Gupta gradual schedule for one level."""
    if config.method == "oneshot":
        return PruneSchedule(final=sparsity)
    total = finetune.epochs * steps_per_epoch(finetune_rows, finetune.batch_size)
    return gradual_schedule(sparsity, config.initial_sparsity, total, config.prune_every, config.prune_end_fraction)


def compress_population(models: list[nn.Module], data: PopulationData, config: CompressConfig, finetune: TrainConfig) -> Iterator[Level]:
    """Yield level ``dense`` (fine-tuned at sparsity 0), one level per sparsity, one per int8 kind."""
    sparsities = [0.0, *config.sparsities]
    tags = ["dense", *(level_tag(s) for s in sparsities[1:])]
    tuned, achieved = _finetune_all(models, data, config, finetune, sparsities)  # [level][model]
    for l, tag in enumerate(tags):
        details = [{"sparsity": sparsities[l], "method": config.method, "finetune_epochs": finetune.epochs,
                    "achieved_sparsity": a["global"], "per_layer_sparsity": a} for a in achieved[l]]
        yield _level(tag, "dense" if l == 0 else "pruning", tuned[l], data, config, details)
    for kind in config.quantization:
        quantized, details = _quantize_all(kind, tuned[0], data)
        yield _level(quantization_tag(kind), "quantization", quantized, data, config, details)


def _quantize_all(kind: str, models: list[nn.Module], data: PopulationData) -> tuple[list[nn.Module], list[dict]]:
    """int8 copies of every model and what was quantized; static: one torch.export per architecture
    (the models' weights are loaded into a copy of it), calibrated per model on its own rows."""
    quantized, details, exported = [], [], {}
    for m, dense in enumerate(models):
        if kind == "dynamic":
            model, report = quantize_dynamic_int8(dense)
        else:
            calibration = data.x[data.calibration[m]]
            key = architecture_key(dense)
            if key not in exported:
                exported[key] = export_for_static_int8(dense, calibration)
            model, report = quantize_static_int8(dense, calibration, exported[key])
        quantized.append(model)
        details.append({"method": report.method, "executed_as": report.executed_as, "quantized_layers": report.quantized,
                        "float_layers": report.float_layers, "calibration_rows": int(len(data.calibration[m])) if kind == "static" else 0})
    return quantized, details


def _finetune_all(models, data: PopulationData, config: CompressConfig, finetune: TrainConfig, sparsities: list[float]):
    """Fine-tuned copies [level][model] and their achieved sparsity, as ensembles where possible."""
    tuned = [[None] * len(models) for _ in sparsities]
    achieved = [[None] * len(models) for _ in sparsities]
    if not supports_ensemble(models[0]) or finetune.epochs == 0:  # batch norm, or prune-only (oneshot, 0 epochs)
        for m, model in enumerate(models):
            for l, sparsity in enumerate(sparsities):
                schedule = prune_schedule(config, sparsity, len(data.rows[m]), finetune)
                result = prune_finetune(model, data.x[data.rows[m]], data.y[data.rows[m]], schedule, _seeded(finetune, data.seeds[m]))
                tuned[l][m], achieved[l][m] = result.model, result.sparsity
        return tuned, achieved
    for group in step_groups([Member(s, r) for s, r in zip(data.seeds, data.rows)], finetune.batch_size):
        schedules = [prune_schedule(config, s, len(data.rows[group[0]]), finetune) for s in sparsities]
        result = finetune_population([models[m] for m in group], [data.rows[m] for m in group], [data.seeds[m] for m in group],
                                     data.x, data.y, schedules, finetune)
        for i, m in enumerate(group):
            for l in range(len(sparsities)):
                member = i * len(sparsities) + l
                tuned[l][m], achieved[l][m] = result.stacked.module(member, models[m]), result.achieved[member]
    return tuned, achieved


def _seeded(finetune: TrainConfig, seed: int) -> TrainConfig:
    return TrainConfig(**{**finetune.__dict__, "seed": seed})


def _level(tag: str, kind: str, models: list[nn.Module], data: PopulationData, config: CompressConfig, details: list[dict]) -> Level:
    """Predict every row with every model of the level; latency is timed on the first model only
    (same architecture and storage across the population)."""
    predictions = np.stack([predict_logits(model, data.x, config.batch_size).argmax(axis=1) for model in models])
    metrics = [measure_predictions(model, predictions[m], data, m, config, timed=(m == 0)) for m, model in enumerate(models)]
    return Level(tag, kind, predictions, metrics, details)


def measure_predictions(model: nn.Module, predictions: np.ndarray, data: PopulationData, m: int, config: CompressConfig, timed: bool) -> dict:
    """Model m's test accuracy, out-of-sample accuracy (rows it held out), per-class accuracy on its
    held-out rows, size on disk and (when `timed`) median CPU latency on one batch of test rows."""
    labels = data.y.numpy()
    test, held = data.is_test, data.held_out[m]
    size, gzip_size = serialized_bytes(model)
    batch = (data.x[test] if test.any() else data.x)[: config.batch_size]
    return {
        "test_accuracy": float(np.mean(predictions[test] == labels[test])) if test.any() else float("nan"),
        "oos_accuracy": float(np.mean(predictions[held] == labels[held])) if held.any() else float("nan"),
        "class_accuracy": class_accuracy(predictions[held], labels[held], data.num_classes).tolist(),
        "size_bytes": size, "gzip_size_bytes": gzip_size,
        "latency_ms": latency_ms(model, batch, config.latency_repeats) if timed else float("nan"),
        "latency_batch_rows": int(len(batch)),
    }
