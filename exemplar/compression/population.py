"""Compress one dense model at every configured level and measure each copy.

One call handles one member of the population (one seed); the caller fans seeds out and hands the
(S, N) predicted labels per level to :func:`exemplar.compression.cie.cie_table`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from exemplar.compression.config import CompressConfig, level_tag, quantization_tag
from exemplar.compression.finetune import prune_finetune
from exemplar.training.schedules import steps_per_epoch
from exemplar.compression.measure import class_accuracy, latency_ms, predict_logits, serialized_bytes
from exemplar.compression.quantize import quantize_dynamic_int8, quantize_static_int8
from exemplar.compression.schedule import PruneSchedule, gradual_schedule
from exemplar.training.config import TrainConfig


@dataclass
class Compressed:
    tag: str  # "p50", "int8_dynamic", ...
    kind: str  # "pruning" or "quantization"
    model: nn.Module
    details: dict = field(default_factory=dict)  # achieved sparsity, or which layers were quantized


@dataclass
class EvaluationData:
    """Everything a model is measured on: (N, ...) inputs and (N,) labels of every row, the test rows,
    the fine-tuning rows and the calibration rows (boolean / index arrays over the N rows)."""

    x: torch.Tensor
    y: torch.Tensor
    is_test: np.ndarray
    is_finetune: np.ndarray
    calibration: np.ndarray
    num_classes: int


def prune_schedule(config: CompressConfig, sparsity: float, finetune_rows: int, finetune: TrainConfig) -> PruneSchedule:
    """One-shot (mask fixed while fine-tuning) or Zhu & Gupta gradual schedule for one level."""
    if config.method == "oneshot":
        return PruneSchedule(final=sparsity)
    total = finetune.epochs * steps_per_epoch(finetune_rows, finetune.batch_size)
    return gradual_schedule(sparsity, config.initial_sparsity, total, config.prune_every, config.prune_end_fraction)


def compressed_models(dense: nn.Module, config: CompressConfig, data: EvaluationData, finetune: TrainConfig) -> Iterator[Compressed]:
    """Yield the pruned copies (one per sparsity) and the int8 copies (one per quantization kind)."""
    x_tune, y_tune = data.x[data.is_finetune], data.y[data.is_finetune]
    for sparsity in config.sparsities:
        schedule = prune_schedule(config, sparsity, len(y_tune), finetune)
        result = prune_finetune(dense, x_tune, y_tune, schedule, finetune)
        details = {"sparsity": sparsity, "method": config.method, "finetune_epochs": finetune.epochs,
                   "achieved_sparsity": result.sparsity["global"], "per_layer_sparsity": result.sparsity,
                   "mask_updates": len(result.history)}
        yield Compressed(level_tag(sparsity), "pruning", result.model, details)
    for kind in config.quantization:
        if kind == "dynamic":
            model, report = quantize_dynamic_int8(dense)
        else:
            model, report = quantize_static_int8(dense, data.x[data.calibration])
        details = {"method": report.method, "executed_as": report.executed_as, "quantized_layers": report.quantized,
                   "float_layers": report.float_layers, "calibration_rows": int(len(data.calibration)) if kind == "static" else 0}
        yield Compressed(quantization_tag(kind), "quantization", model, details)


def measure(model: nn.Module, data: EvaluationData, config: CompressConfig) -> tuple[np.ndarray, dict]:
    """(N,) predicted labels on every row, and the model's test accuracy, per-class test accuracy,
    size on disk and median CPU latency for one batch of ``config.batch_size`` test rows (all rows
    when there is no test split)."""
    predictions = predict_logits(model, data.x, config.batch_size).argmax(axis=1)
    labels = data.y.numpy()
    test = data.is_test
    timed = data.x[test] if test.any() else data.x
    size, gzip_size = serialized_bytes(model)
    metrics = {
        "test_accuracy": float(np.mean(predictions[test] == labels[test])) if test.any() else float("nan"),
        "class_accuracy": class_accuracy(predictions[test], labels[test], data.num_classes).tolist(),
        "size_bytes": size, "gzip_size_bytes": gzip_size,
        "latency_ms": latency_ms(model, timed[: config.batch_size], config.latency_repeats),
        "latency_batch_rows": int(min(config.batch_size, len(timed))),
    }
    return predictions, metrics
