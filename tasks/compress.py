"""Compress: prune and quantize every dense model of the population, then find the Compression
Identified Exemplars (Hooker et al. 2019) and measure what each compression level costs.

``compress_seed`` (one Prefect task per seed) writes ``compressed/seed_<s>/`` (predictions of the
dense and every compressed copy on every row, and the models' metrics); ``compress`` reuses those
whose fingerprint matches (computing any missing one) and writes ``scores/compression.parquet``
(``is_cie_<level>``, ``cie_score_<level>``, ``cie_score`` per id), ``compression.parquet`` (one row
per model: level, seed, accuracy, per-class accuracy, size, latency) and ``stages/compress.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from exemplar.compression.cie import cie_table
from exemplar.compression.config import CompressConfig
from exemplar.compression.population import EvaluationData, compressed_models, measure
from exemplar.compression.results import accuracy_summary, cie_summary, class_impact_records
from exemplar.models.factory import classifier_from_checkpoint
from exemplar.training.checkpoints import load_checkpoint
from exemplar.training.config import TrainConfig
from tasks import progress, tracking
from tasks._io import read_json, write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import checkpoint_files, read_dataset, read_keep, split_rows, tensors
from tasks.layout import RunLayout
from tasks.train import population_seeds

POPULATION_OF_ONE = "population of 1: CIE reduce to dense-vs-compressed prediction flips and the per-class t-test is undefined; set train.population >= 2 (the paper uses 30)"


def evaluation_data(layout: RunLayout, config: CompressConfig, seed: int) -> tuple[pd.Series, np.ndarray, EvaluationData]:
    """Row ids, (N,) bool train-split mask, and the tensors/masks every model is measured on."""
    dataset = read_dataset(layout.dataset)
    x, y = tensors(dataset)
    keep = read_keep(layout.keep, dataset.table["id"])
    is_train = split_rows(dataset, "train")
    finetune_rows = np.flatnonzero(is_train & keep)
    calibration = np.sort(np.random.default_rng(seed).permutation(finetune_rows)[: config.calibration_rows])
    data = EvaluationData(x, y, split_rows(dataset, "test") & keep, is_train & keep, calibration, dataset.info.num_classes)
    return dataset.table["id"], is_train, data


def finetune_config(cfg: dict, config: CompressConfig, seed: int) -> TrainConfig:
    """The training settings of the dense models, with the fine-tuning epochs, lr and this seed."""
    return TrainConfig(**{**cfg["train"], "epochs": config.finetune_epochs, "lr": config.finetune_lr, "seed": seed, "checkpoint_epochs": []})


def seed_fingerprint(cfg: dict, checkpoint: dict, checkpoint_name: str) -> str:
    payload = json.dumps([cfg["compress"], checkpoint["meta"].get("fingerprint"), checkpoint_name, int(checkpoint["epoch"])], sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


def _model_row(tag: str, kind: str, seed: int, metrics: dict, details: dict) -> dict:
    row = {"level": tag, "kind": kind, "seed": seed, "sparsity": details.get("sparsity", math.nan),
           "achieved_sparsity": details.get("achieved_sparsity", math.nan)}
    row.update({k: v for k, v in metrics.items() if k != "class_accuracy"})
    row.update({f"class_accuracy_{k}": v for k, v in enumerate(metrics["class_accuracy"])})
    return row


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads (0: unchanged), restoring the setting after.
    Process-wide: the compress flow runs its seed tasks one at a time."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_seed(cfg: dict, layout: RunLayout, seed: int) -> dict:
    """Compress and measure the final model of `seed`; write ``compressed/seed_<s>/`` and return its record."""
    config = CompressConfig(**cfg["compress"])
    with torch_threads(config.threads):
        return _run_seed(cfg, config, layout, seed)


def _run_seed(cfg: dict, config: CompressConfig, layout: RunLayout, seed: int) -> dict:
    path = checkpoint_files(layout, seed)[-1]
    checkpoint = load_checkpoint(path)
    dense = classifier_from_checkpoint(checkpoint)
    ids, _, data = evaluation_data(layout, config, seed)
    torch.manual_seed(seed)
    predictions, metrics = measure(dense, data, config)
    columns, rows, details = {"id": ids.to_numpy(), "pred_dense": predictions}, [_model_row("dense", "dense", seed, metrics, {})], {}
    for compressed in compressed_models(dense, config, data, finetune_config(cfg, config, seed)):
        progress.advance(detail=f"compress: seed {seed} {compressed.tag}")
        predictions, metrics = measure(compressed.model, data, config)
        columns[f"pred_{compressed.tag}"] = predictions
        rows.append(_model_row(compressed.tag, compressed.kind, seed, metrics, compressed.details))
        details[compressed.tag] = compressed.details
    record = {"seed": seed, "checkpoint": path.name, "fingerprint": seed_fingerprint(cfg, checkpoint, path.name), "models": rows, "details": details}
    folder = layout.compressed_root / f"seed_{seed}"
    write_parquet(pd.DataFrame(columns), folder / "predictions.parquet")
    write_json(_finite(record), folder / "models.json")
    return record


def _finite(value):
    """NaN/inf -> None recursively, so the JSON written is standard JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def _current_record(cfg: dict, layout: RunLayout, seed: int) -> dict | None:
    """The seed's written record if it matches the configuration and final checkpoint, else None."""
    path = layout.compressed_root / f"seed_{seed}" / "models.json"
    if not path.exists() or not (path.parent / "predictions.parquet").exists():
        return None
    record = read_json(path)
    final = checkpoint_files(layout, seed)[-1]
    expected = seed_fingerprint(cfg, load_checkpoint(final), final.name)
    return record if record.get("fingerprint") == expected else None


def _seed_record(cfg: dict, layout: RunLayout, seed: int) -> dict:
    """The seed's compression record: the written one when current, else a fresh run."""
    return _current_record(cfg, layout, seed) or run_seed(cfg, layout, seed)


@stage_task("compress-seed")
def compress_seed(cfg: dict, run_dir: str, seed: int) -> dict:
    """Compress one member of the population (skipped when its outputs are current); returns its record."""
    return _seed_record(cfg, RunLayout(run_dir), seed)


def population_predictions(layout: RunLayout, seeds: list[int], ids: pd.Series) -> dict[str, np.ndarray]:
    """Per level ("dense", "p50", ...), the (S, N) predicted labels of the population, rows in `ids` order."""
    frames = [pq.read_table(layout.compressed_root / f"seed_{seed}" / "predictions.parquet").to_pandas() for seed in seeds]
    for seed, frame in zip(seeds, frames):
        if not frame["id"].equals(ids.reset_index(drop=True)):
            raise RuntimeError(f"compressed/seed_{seed}/predictions.parquet covers other rows than dataset.parquet")
    tags = [c.removeprefix("pred_") for c in frames[0].columns if c.startswith("pred_")]
    return {tag: np.stack([frame[f"pred_{tag}"].to_numpy() for frame in frames]) for tag in tags}


def level_summary(tag: str, models: pd.DataFrame, records: list[dict], cie: dict) -> dict:
    """Everything the report shows for one compression level (means over the population)."""
    rows = models[models["level"] == tag]
    details = [record["details"][tag] for record in records]
    summary = {"kind": rows["kind"].iat[0], **accuracy_summary(models, tag), **cie}
    if summary["kind"] == "pruning":
        layers = details[0]["per_layer_sparsity"].keys()
        summary.update(sparsity=details[0]["sparsity"], achieved_sparsity=float(rows["achieved_sparsity"].mean()),
                       per_layer_sparsity={k: float(np.mean([d["per_layer_sparsity"][k] for d in details])) for k in layers})
    else:
        summary.update({k: details[0][k] for k in ("method", "executed_as", "quantized_layers", "float_layers", "calibration_rows")})
    summary["class_impact"], summary["most_affected_classes"] = class_impact_records(models, tag)
    return summary


def summarise(cfg: dict, layout: RunLayout, records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(per-id CIE table, per-model table, stage summary) for the population's written outputs."""
    config, seeds = CompressConfig(**cfg["compress"]), [r["seed"] for r in records]
    ids, is_train, data = evaluation_data(layout, config, seeds[0])
    predictions = population_predictions(layout, seeds, ids)
    dense = predictions.pop("dense")
    table = cie_table(ids.to_numpy(), dense, predictions, data.num_classes)
    models = pd.DataFrame([row for record in records for row in record["models"]])
    labels = data.y.numpy()
    dense_summary = accuracy_summary(models, "dense")
    summary = {
        "population": len(seeds), "seeds": seeds, "note": POPULATION_OF_ONE if len(seeds) == 1 else "",
        "method": config.method, "finetune_epochs": config.finetune_epochs,
        "dense_test_accuracy": dense_summary["test_accuracy"], "dense": dense_summary, "levels": {},
    }
    for tag, compressed in predictions.items():
        cie = cie_summary(table[f"is_cie_{tag}"].to_numpy(), dense, compressed, labels, is_train, data.is_test)
        summary["levels"][tag] = level_summary(tag, models, records, cie)
    return table, models, _finite(summary)


@stage_task("compress")
def compress(cfg: dict, run_dir: str, track: dict, records: list[dict] | None = None) -> dict:
    """CIE over the population and results. `records` are the seeds' records from ``compress_seed``;
    without them any seed whose outputs are missing or stale is compressed here."""
    layout = RunLayout(run_dir)
    config = CompressConfig(**cfg["compress"])
    config.validate()
    params = {"compress": cfg["compress"], "train.population": cfg["train"].get("population", 1)}
    with tracking.stage_run(track["uri"], track["experiment"], "compress", track["parent_run_id"], params) as run_id:
        records = records or [_seed_record(cfg, layout, seed) for seed in population_seeds(cfg)]
        table, models, summary = summarise(cfg, layout, records)
        write_parquet(table, layout.compression_scores)
        write_parquet(models, layout.compression_results)
        write_json(summary, layout.stage_metrics("compress"))
        tracking.log_metrics(track["uri"], run_id, {k: v for k, v in summary.items() if k not in ("levels", "seeds")})
        for tag, level in summary["levels"].items():
            tracking.log_metrics(track["uri"], run_id, {f"{tag}.{k}": v for k, v in level.items() if k not in ("per_layer_sparsity", "class_impact")})
        tracking.log_artifact(track["uri"], run_id, layout.compression_results)
    return summary
