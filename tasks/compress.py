"""Compress: prune and quantize every model of the cross-fitted population, then find the
Compression Identified Exemplars (Hooker et al. 2019) out of sample and measure what each level costs.

The cross-fitted models (``checkpoints/crossfit_<j>/``, folds in ``crossfit_folds.parquet``) are each
fine-tuned at sparsity 0 (level ``dense``) and at every sparsity on their own training rows, and the
fine-tuned dense model is quantized to int8. Every row's CIE use only the models that did not train
on it (``held_out``): the R models whose fold held out a training row, all R * K for a test row.

Writes ``compressed/predictions.parquet`` + ``compressed/population.json`` (every model's label on
every row, reused while the settings and checkpoints are unchanged), ``scores/compression.parquet``
(per id: CIE, and ``population_confidence_score``, the trained population's held-out 1 - p(label), a
label-family member of the fusion), ``compression.parquet`` (per model) and ``stages/compress.json``.
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
from scipy import special

from exemplar.compression.cie import cie_table
from exemplar.compression.config import CompressConfig
from exemplar.compression.measure import predict_logits
from exemplar.compression.population import PopulationData, compress_population
from exemplar.compression.results import accuracy_summary, cie_summary, class_impact_records
from exemplar.errors import ExemplarError
from exemplar.models.factory import classifier_from_checkpoint
from exemplar.training.checkpoints import list_checkpoints, load_checkpoint
from exemplar.training.config import TrainConfig
from exemplar.training.folds import held_out_confidence, held_out_mask, member_rows
from tasks import progress, tracking
from tasks._io import read_json, write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset, read_keep, split_rows, tensors
from tasks.layout import RunLayout
from tasks.population import crossfit_seeds, rows_digest

POPULATION_OF_ONE = "a held-out population of 1 per row: CIE reduce to dense-vs-compressed prediction flips; set train.crossfit_repeats >= 3"


def finetune_config(cfg: dict, config: CompressConfig) -> TrainConfig:
    """The training settings of the dense models, with the fine-tuning epochs and lr (seeds per model)."""
    return TrainConfig(**{**cfg["train"], "epochs": config.finetune_epochs, "lr": config.finetune_lr, "checkpoint_epochs": []})


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads (0: unchanged), restoring the setting after."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _checkpoints(cfg: dict, layout: RunLayout) -> list[dict]:
    members = crossfit_seeds(cfg)
    if not members:
        raise ExemplarError("the compress stage needs the cross-fitted population: set train.crossfit_repeats >= 1 and re-run the train stage.")
    found = [list_checkpoints(layout.crossfit_checkpoints(j)) for j in range(len(members))]
    missing = [j for j, paths in enumerate(found) if not paths]
    if missing:
        raise ExemplarError(f"no checkpoints for cross-fitted models {missing} in {layout.checkpoints_root}. Fix: run the train stage first.")
    return [load_checkpoint(paths[-1]) for paths in found]


def population_data(layout: RunLayout, config: CompressConfig, checkpoints: list[dict]) -> tuple[pd.Series, np.ndarray, PopulationData]:
    """Row ids, (N,) bool training mask, and the population's rows, held-out mask and tensors. Each
    model's training rows (from ``crossfit_folds.parquet``) are checked against the digest its
    checkpoint recorded, so the held-out mask is what the models really held out."""
    dataset = read_dataset(layout.dataset)
    x, y = tensors(dataset)
    ids = dataset.table["id"]
    is_train = split_rows(dataset, "train") & read_keep(layout.keep, ids)
    folds = pq.read_table(layout.crossfit_folds).to_pandas()
    train_ids = ids[is_train].to_numpy(dtype=object)
    assignment = np.stack([g.set_index("id")["fold"].reindex(train_ids).to_numpy() for _, g in folds.groupby("repeat", sort=True)])
    train_index = np.flatnonzero(is_train)
    rows = [train_index[r] for r in member_rows(assignment)]
    for j, (checkpoint, member) in enumerate(zip(checkpoints, rows)):
        if checkpoint["meta"].get("crossfit", {}).get("rows_digest") != rows_digest(ids.to_numpy(dtype=object)[member]):
            raise ExemplarError(f"checkpoints/crossfit_{j} was trained on other rows than crossfit_folds.parquet lists. Fix: re-run the train stage.")
    seeds = [int(c["meta"]["crossfit"]["seed"]) for c in checkpoints]
    calibration = [np.sort(np.random.default_rng(s).permutation(r)[: config.calibration_rows]) for s, r in zip(seeds, rows)]
    data = PopulationData(x, y, split_rows(dataset, "test") & read_keep(layout.keep, ids), held_out_mask(assignment, is_train), seeds,
                          [torch.from_numpy(r) for r in rows], calibration, dataset.info.num_classes)
    return ids, is_train, data


def population_fingerprint(cfg: dict, checkpoints: list[dict]) -> str:
    payload = json.dumps([cfg["compress"], cfg["train"], [(c["meta"].get("fingerprint"), int(c["epoch"])) for c in checkpoints]], sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


def _model_row(tag: str, kind: str, seed: int, member: dict, metrics: dict, details: dict) -> dict:
    row = {"level": tag, "kind": kind, "seed": seed, "member": member["member"], "repeat": member["repeat"], "fold": member["fold"],
           "sparsity": details.get("sparsity", math.nan), "achieved_sparsity": details.get("achieved_sparsity", math.nan)}
    row.update({k: v for k, v in metrics.items() if k != "class_accuracy"})
    row.update({f"class_accuracy_{k}": v for k, v in enumerate(metrics["class_accuracy"])})
    return row


def run_population(cfg: dict, layout: RunLayout, checkpoints: list[dict]) -> dict:
    """Compress every cross-fitted model at every level; write the predictions and the record."""
    config = CompressConfig(**cfg["compress"])
    ids, _, data = population_data(layout, config, checkpoints)
    models = [classifier_from_checkpoint(c) for c in checkpoints]
    crossfit = [c["meta"]["crossfit"] for c in checkpoints]
    columns, rows, details = {"id": ids.to_numpy()}, [], {}
    torch.manual_seed(int(cfg["train"]["seed"]))  # dropout while fine-tuning: reproducible for a given configuration
    with torch_threads(config.threads):
        for level in compress_population(models, data, config, finetune_config(cfg, config)):
            progress.advance(detail=f"compress: {len(models)} models at {level.tag}")
            for m, seed in enumerate(data.seeds):
                columns[f"pred_{level.tag}__{m}"] = level.predictions[m]
                rows.append(_model_row(level.tag, level.kind, seed, crossfit[m], level.metrics[m], level.details[m]))
            details[level.tag] = level.details
    record = {"fingerprint": population_fingerprint(cfg, checkpoints), "seeds": data.seeds, "models": rows, "details": details}
    write_parquet(pd.DataFrame(columns), layout.compressed_root / "predictions.parquet")
    write_json(_finite(record), layout.compressed_root / "population.json")
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


def population_record(cfg: dict, layout: RunLayout, checkpoints: list[dict]) -> dict:
    """The written record when it matches the settings and checkpoints, else a fresh run."""
    path = layout.compressed_root / "population.json"
    if path.exists() and (layout.compressed_root / "predictions.parquet").exists():
        record = read_json(path)
        if record.get("fingerprint") == population_fingerprint(cfg, checkpoints):
            return record
    return run_population(cfg, layout, checkpoints)


def population_predictions(layout: RunLayout, members: int, ids: pd.Series) -> dict[str, np.ndarray]:
    """Per level ("dense", "p50", ...), the (M, N) predicted labels of the population, rows in `ids` order."""
    frame = pq.read_table(layout.compressed_root / "predictions.parquet").to_pandas()
    if not frame["id"].equals(ids.reset_index(drop=True)):
        raise RuntimeError("compressed/predictions.parquet covers other rows than dataset.parquet")
    tags = list(dict.fromkeys(c.removeprefix("pred_").rsplit("__", 1)[0] for c in frame.columns if c.startswith("pred_")))
    return {tag: np.stack([frame[f"pred_{tag}__{m}"].to_numpy() for m in range(members)]) for tag in tags}


def population_confidence(checkpoints: list[dict], data: PopulationData) -> np.ndarray:
    """(N,) 1 - p(given label) of the trained population (the crossfit checkpoints as the train stage
    left them, before any fine-tuning), averaged over the models that held each row out."""
    probs = np.stack([special.softmax(predict_logits(classifier_from_checkpoint(c), data.x), axis=1) for c in checkpoints])
    return held_out_confidence(probs, data.held_out, data.y.numpy())


def level_summary(tag: str, models: pd.DataFrame, details: list[dict], cie: dict) -> dict:
    """Everything the report shows for one compression level (means over the population)."""
    rows = models[models["level"] == tag]
    summary = {"kind": rows["kind"].iat[0], **accuracy_summary(models, tag), "oos_accuracy": float(rows["oos_accuracy"].mean()), **cie}
    if summary["kind"] == "pruning":
        layers = details[0]["per_layer_sparsity"].keys()
        summary.update(sparsity=details[0]["sparsity"], achieved_sparsity=float(rows["achieved_sparsity"].mean()),
                       per_layer_sparsity={k: float(np.mean([d["per_layer_sparsity"][k] for d in details])) for k in layers})
    else:
        summary.update({k: details[0][k] for k in ("method", "executed_as", "quantized_layers", "float_layers", "calibration_rows")})
    summary["class_impact"], summary["most_affected_classes"] = class_impact_records(models, tag)
    return summary


def summarise(cfg: dict, layout: RunLayout, record: dict, checkpoints: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(per-id CIE table, per-model table, stage summary) for the population's written outputs."""
    config = CompressConfig(**cfg["compress"])
    ids, is_train, data = population_data(layout, config, checkpoints)
    predictions = population_predictions(layout, len(record["seeds"]), ids)
    dense, labels = predictions.pop("dense"), data.y.numpy()
    table = cie_table(ids.to_numpy(), dense, predictions, data.num_classes, data.held_out, labels)
    table["population_confidence_score"] = population_confidence(checkpoints, data)
    models = pd.DataFrame(record["models"])
    held = data.held_out.sum(axis=0)
    summary = {
        "population": len(record["seeds"]), "seeds": record["seeds"], "crossfit_folds": int(cfg["train"]["crossfit_folds"]),
        "crossfit_repeats": int(cfg["train"]["crossfit_repeats"]), "held_out_models_train_row": int(held[is_train].min()),
        "held_out_models_test_row": int(held[data.is_test].min()) if data.is_test.any() else None,
        "note": POPULATION_OF_ONE if held[is_train].min() == 1 else "", "method": config.method, "finetune_epochs": config.finetune_epochs,
        "dense_reference": "each model fine-tuned like the compressed ones at sparsity 0",
        "dense_test_accuracy": accuracy_summary(models, "dense")["test_accuracy"], "dense": accuracy_summary(models, "dense"), "levels": {},
    }
    seed = int(cfg["train"]["seed"])
    for tag, compressed in predictions.items():
        cie = cie_summary(table[f"is_cie_{tag}"].to_numpy(), dense, compressed, labels, is_train, data.is_test, data.held_out, seed)
        summary["levels"][tag] = level_summary(tag, models, record["details"][tag], cie)
    return table, models, _finite(summary)


@stage_task("compress")
def compress(cfg: dict, run_dir: str, track: dict) -> dict:
    """Compress the cross-fitted population (skipped when current), then CIE and results."""
    layout = RunLayout(run_dir)
    config = CompressConfig(**cfg["compress"])
    config.validate()
    params = {"compress": cfg["compress"], "train.crossfit_repeats": cfg["train"].get("crossfit_repeats"), "train.crossfit_folds": cfg["train"].get("crossfit_folds")}
    with tracking.stage_run(track["uri"], track["experiment"], "compress", track["parent_run_id"], params) as run_id:
        checkpoints = _checkpoints(cfg, layout)
        record = population_record(cfg, layout, checkpoints)
        table, models, summary = summarise(cfg, layout, record, checkpoints)
        write_parquet(table, layout.compression_scores)
        write_parquet(models, layout.compression_results)
        write_json(summary, layout.stage_metrics("compress"))
        tracking.log_metrics(track["uri"], run_id, {k: v for k, v in summary.items() if k not in ("levels", "seeds")})
        for tag, level in summary["levels"].items():
            tracking.log_metrics(track["uri"], run_id, {f"{tag}.{k}": v for k, v in level.items() if k not in ("per_layer_sparsity", "class_impact")})
        tracking.log_artifact(track["uri"], run_id, layout.compression_results)
    return summary
