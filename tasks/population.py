"""Train the population as vectorised ensembles (:mod:`exemplar.training.ensemble`):

- ``train_seeds``: the ``train.population`` seeds on every kept training row, the models the score
  stage reads, written exactly as the per-seed ``tasks.train.train`` writes them (checkpoints,
  dynamics, ``stages/train_seed<s>.json``, one MLflow run per seed);
- ``train_crossfit``: the cross-fitted models (``train.crossfit_repeats`` x ``train.crossfit_folds``,
  :mod:`exemplar.training.folds`), each on the training rows outside its fold, final checkpoint in
  ``checkpoints/crossfit_<j>/``; their folds in ``crossfit_folds.parquet`` (``id``, ``repeat``, ``fold``)
  and their summary in ``stages/train_crossfit.json``. The compress stage takes every row's
  out-of-sample predictions from the models that held it out.

Models with batch norm (ResNet-18), or ``train.ensemble=false``, train one after another instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from exemplar.data.canonical import dataset_hash
from exemplar.errors import ExemplarError
from exemplar.models.classifier import input_statistics
from exemplar.models.factory import ModelConfig, build_classifier, model_meta, resolve_model_name
from exemplar.training.checkpoints import PATTERN, checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint
from exemplar.training.config import TrainConfig
from exemplar.training.device import resolve_device
from exemplar.training.ensemble import Member, fit_ensemble, step_groups
from exemplar.training.folds import crossfit_folds, member_rows
from exemplar.training.loop import evaluate, fit
from tasks import faults, tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset, read_keep, split_rows, tensors
from tasks.layout import RunLayout
from tasks.train import _dynamics_writer, _stage_run, fingerprint, population_seeds


def uses_ensemble(cfg: dict, modality: str = "image") -> bool:
    """Whether the population trains as vectorised ensembles (``train.ensemble`` and no batch norm)."""
    return bool(cfg["train"].get("ensemble", True)) and resolve_model_name(cfg["model"]["name"], modality) != "resnet18"


def crossfit_seeds(cfg: dict) -> list[int]:
    """Seeds of the cross-fitted models: after the population's, one per (repeat, fold)."""
    first = int(cfg["train"]["seed"]) + int(cfg["train"].get("population", 1))
    return list(range(first, first + int(cfg["train"].get("crossfit_repeats", 0)) * int(cfg["train"].get("crossfit_folds", 2))))


@dataclass
class _Data:
    x: torch.Tensor  # (n_train, ...) kept training rows
    y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    ids: np.ndarray  # (n_train,) their ids
    info: object
    data_hash: str


@dataclass
class _Plan:
    """One model to train: seed, (n,) indices into the training rows, checkpoint folder, meta, model."""

    seed: int
    rows: np.ndarray
    directory: Path
    meta: dict
    model: torch.nn.Module


def _data(layout: RunLayout) -> _Data:
    dataset = read_dataset(layout.dataset)
    x, y = tensors(dataset)
    keep = read_keep(layout.keep, dataset.table["id"])
    is_train, is_test = split_rows(dataset, "train") & keep, split_rows(dataset, "test") & keep
    ids = dataset.table["id"].to_numpy(dtype=object)[is_train]
    return _Data(x[is_train], y[is_train], x[is_test], y[is_test], ids, dataset.info, dataset_hash(dataset.table))


def _plan(cfg: dict, data: _Data, seed: int, rows: np.ndarray, directory: Path, extra: dict | None = None) -> _Plan:
    """Build the seeded model (normalised on its own rows) and the meta its checkpoints carry; the
    fingerprint equals ``tasks.train``'s for a seed trained on every row, so both paths resume each other."""
    model_config = ModelConfig(**cfg["model"])
    info = data.info
    input_shape = tuple(data.x.shape[1:])  # tables: the encoded width, wider than the stored columns
    meta = model_meta(model_config, info.modality, input_shape, info.num_classes)
    resumable = {k: v for k, v in cfg["train"].items() if k not in TrainConfig.POPULATION_KEYS} | {"seed": seed}
    meta["fingerprint"] = fingerprint({**cfg, "train": resumable}, data.data_hash, data.ids[rows].tolist())
    meta.update(extra or {})
    torch.manual_seed(seed)
    mean, std = input_statistics(data.x[torch.from_numpy(rows)])
    model = build_classifier(model_config, info.modality, input_shape, info.num_classes, mean, std)
    return _Plan(seed, rows, directory, meta, model)


def _resume(plans: list[_Plan], usable: list[int | None] | None = None) -> list[dict] | None:
    """Every plan's checkpoint of the latest epoch they all have (None: start from scratch). `usable`
    caps each plan's epoch (a checkpoint counts only when its epochs' dynamics are all on disk)."""
    found = [{int(PATTERN.match(p.name).group(1)): p for p in list_checkpoints(plan.directory)} for plan in plans]
    if usable is not None:
        found = [{e: p for e, p in f.items() if limit is None or e <= limit} for f, limit in zip(found, usable)]
    common = set.intersection(*(set(f) for f in found))
    if not common:
        return None
    checkpoints = [load_checkpoint(f[max(common)]) for f in found]
    for plan, checkpoint in zip(plans, checkpoints):
        if checkpoint["meta"].get("fingerprint") != plan.meta["fingerprint"]:
            raise ExemplarError(
                f"{plan.directory} holds checkpoints from a different configuration or dataset. "
                "Fix: choose a new out_dir, or delete that checkpoints folder to retrain from scratch."
            )
    return checkpoints


def _train(plans: list[_Plan], data: _Data, config: TrainConfig, on_epoch=None, ensemble: bool = True,
           usable: list[int | None] | None = None) -> list[dict]:
    """Train `plans` (ensembles of equal step counts, or one by one); return per-plan run facts
    (``train_seconds`` is the wall time of the plan's ensemble, shared by its members)."""
    facts: list[dict] = [{} for _ in plans]
    groups = step_groups([Member(p.seed, torch.from_numpy(p.rows)) for p in plans], config.batch_size) if ensemble else [[i] for i in range(len(plans))]
    for group in groups:
        chosen = [plans[i] for i in group]
        resume = _resume(chosen, [usable[i] for i in group] if usable is not None else None)
        started = time.perf_counter()
        if ensemble:
            _fit_ensemble(chosen, data, config, resume, group, on_epoch)
        else:
            _fit_alone(chosen[0], data, config, resume, group[0], on_epoch)
        seconds = time.perf_counter() - started
        for i in group:
            facts[i] = {"train_seconds": seconds, "resumed_from_epoch": int(resume[0]["epoch"]) if resume else 0, "ensemble_size": len(group) if ensemble else 1}
    return facts


def _saver(plan: _Plan):
    def save(epoch: int, state: dict) -> None:
        save_checkpoint(state, checkpoint_path(plan.directory, epoch))
        faults.reached(f"checkpoint:{plan.seed}:{epoch}")  # the fault-injection tests' kill point (no-op unless set)

    return save


def _fit_ensemble(plans: list[_Plan], data: _Data, config: TrainConfig, resume, group: list[int], on_epoch) -> None:
    members = [Member(p.seed, torch.from_numpy(p.rows)) for p in plans]
    stacked, _ = fit_ensemble(
        [p.model for p in plans], members, data.x, data.y, config, test_x=data.test_x, test_y=data.test_y, resume=resume,
        metas=[p.meta for p in plans], save_checkpoint=lambda m, epoch, state: _saver(plans[m])(epoch, state),
        on_epoch=(lambda m, result: on_epoch(group[m], result)) if on_epoch else None,
    )
    for m, plan in enumerate(plans):
        plan.model = stacked.module(m, plan.model)


def _fit_alone(plan: _Plan, data: _Data, config: TrainConfig, resume, index: int, on_epoch) -> None:
    rows = torch.from_numpy(plan.rows)
    torch.manual_seed(plan.seed)
    fit(plan.model, data.x[rows], data.y[rows], TrainConfig(**{**config.__dict__, "seed": plan.seed}), test_x=data.test_x, test_y=data.test_y,
        resume=resume[0] if resume else None, meta=plan.meta, save_checkpoint=_saver(plan),
        on_epoch=(lambda result: on_epoch(index, result)) if on_epoch else None)
    plan.model.cpu().eval()


def _accuracy(plan: _Plan, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, float]:
    return evaluate(plan.model, x, y, batch)


@stage_task("train-population")
def train_seeds(cfg: dict, run_dir: str, track: dict) -> dict:
    """Train the ``train.population`` seeds on every kept training row as one ensemble; same outputs
    as one ``tasks.train.train`` per seed."""
    layout, data = RunLayout(run_dir), _data(RunLayout(run_dir))
    config = TrainConfig(**cfg["train"])
    seeds = population_seeds(cfg)
    begun = {seed: layout.begin("train", cfg, seed) for seed in seeds}  # the manifest's train_seed<s> entries
    if all(done is not None for done, _ in begun.values()):  # every seed complete with these settings and inputs:
        return {"seeds": [begun[seed][0] for seed in seeds]}  # rewriting its summary would make every later stage redo its work
    inputs = {seed: seed_inputs for seed, (_, seed_inputs) in begun.items()}
    plans = [_plan(cfg, data, seed, np.arange(len(data.y)), layout.checkpoints(seed)) for seed in seeds]
    usable = [_usable_epoch(layout, seed) for seed in seeds]
    with contextlib.ExitStack() as runs:
        run_ids = [runs.enter_context(_stage_run(track, cfg, seed)) for seed in seeds]
        writers = [_dynamics_writer(layout, seed, data.ids.tolist(), track, run_id) for seed, run_id in zip(seeds, run_ids)]
        facts = _train(plans, data, config, lambda m, result: writers[m](result), uses_ensemble(cfg, data.info.modality), usable)
        summaries = [_seed_summary(plan, data, config, fact) for plan, fact in zip(plans, facts)]
        for plan, summary, run_id in zip(plans, summaries, run_ids):
            write_json(summary, layout.stage_metrics(f"train_seed{plan.seed}"))
            tracking.log_metrics(track["uri"], run_id, summary)
            tracking.log_model(track["uri"], run_id, plan.model, data.x[:2].numpy())
            layout.commit("train", cfg, plan.seed, inputs[plan.seed], summary)
    return {"seeds": summaries}


def _usable_epoch(layout: RunLayout, seed: int) -> int:
    """The newest epoch a seed may resume from: its checkpoint and every earlier epoch's dynamics are
    on disk (0: start afresh), as :meth:`RunLayout.resume_checkpoint` decides for one-model training."""
    path = layout.resume_checkpoint(seed)
    return int(PATTERN.match(path.name).group(1)) if path is not None else 0


def _seed_summary(plan: _Plan, data: _Data, config: TrainConfig, fact: dict) -> dict:
    test_loss, test_accuracy = _accuracy(plan, data.test_x, data.test_y, config.eval_batch_size)
    train_loss, train_accuracy = _accuracy(plan, data.x, data.y, config.eval_batch_size)
    return {
        "seed": plan.seed, "epochs_run": config.epochs - fact["resumed_from_epoch"], **fact,
        "final_test_accuracy": test_accuracy, "final_test_loss": test_loss, "final_train_accuracy": train_accuracy,
        "train_rows": len(data.y), "test_rows": len(data.test_y), "device": str(resolve_device(config.device)),
        "amp": False, "world_size": 1, "torch_threads": torch.get_num_threads(),
    }


def rows_digest(ids: np.ndarray) -> str:
    """Hash of the ids a model trained on (in order), stored in its checkpoints: the compress stage
    checks its held-out mask against it."""
    return hashlib.blake2b("\n".join(map(str, ids)).encode(), digest_size=12).hexdigest()


def crossfit_plans(cfg: dict, layout: RunLayout, data: _Data) -> tuple[np.ndarray, list[_Plan]]:
    """(R, n_train) fold assignment and one plan per cross-fitted model j = r * K + k."""
    train = cfg["train"]
    assignment = crossfit_folds(data.y.numpy(), int(train["crossfit_folds"]), int(train["crossfit_repeats"]), int(train["seed"]))
    folds = int(train["crossfit_folds"])
    plans = [
        _plan(cfg, data, seed, rows, layout.crossfit_checkpoints(j),
              {"crossfit": {"member": j, "repeat": j // folds, "fold": j % folds, "seed": seed, "rows_digest": rows_digest(data.ids[rows])}})
        for j, (seed, rows) in enumerate(zip(crossfit_seeds(cfg), member_rows(assignment)))
    ]
    return assignment, plans


@stage_task("train-crossfit")
def train_crossfit(cfg: dict, run_dir: str, track: dict) -> dict:
    """Train the cross-fitted models (final checkpoint only) and write their folds."""
    layout = RunLayout(run_dir)
    done, inputs = layout.begin("crossfit", cfg)  # the manifest's crossfit entry, which compress requires
    if done is not None:  # complete with these settings and inputs (see train_seeds)
        return done
    data = _data(layout)
    if not crossfit_seeds(cfg):
        layout.commit("crossfit", cfg, None, inputs, {"members": 0})
        return {"members": 0}
    assignment, plans = crossfit_plans(cfg, layout, data)
    config = TrainConfig(**{**cfg["train"], "checkpoint_epochs": [int(cfg["train"]["epochs"])]})
    with tracking.stage_run(track["uri"], track["experiment"], "crossfit", track["parent_run_id"], {"train": cfg["train"]}) as run_id:
        started = time.perf_counter()
        _train(plans, data, config, ensemble=uses_ensemble(cfg, data.info.modality))
        accuracy = [_accuracy(plan, data.test_x, data.test_y, config.eval_batch_size)[1] for plan in plans]
        folds = pd.DataFrame({"id": np.tile(data.ids, len(assignment)), "repeat": np.repeat(np.arange(len(assignment)), len(data.ids)),
                              "fold": assignment.reshape(-1)})
        write_parquet(folds, layout.crossfit_folds)
        summary = {
            "members": len(plans), "folds": int(cfg["train"]["crossfit_folds"]), "repeats": len(assignment), "seeds": [p.seed for p in plans],
            "rows_per_member": [len(p.rows) for p in plans], "test_accuracy_mean": float(np.mean(accuracy)),
            "test_accuracy_std": float(np.std(accuracy, ddof=1)) if len(accuracy) > 1 else 0.0,
            "train_seconds": time.perf_counter() - started, "ensemble": uses_ensemble(cfg, data.info.modality),
        }
        write_json(summary, layout.stage_metrics("train_crossfit"))
        tracking.log_metrics(track["uri"], run_id, {k: v for k, v in summary.items() if not isinstance(v, list)})
    layout.commit("crossfit", cfg, None, inputs, summary)
    return summary
