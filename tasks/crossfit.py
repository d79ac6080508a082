"""Cross-fitting folds as Prefect tasks: each fold fits the out-of-sample learner on the other folds'
training rows and predicts every row (exemplar/scoring/crossfit.py). The score flow submits the K folds
to the configured task runner (so ``runner=dask`` spreads them) and combines them before scoring."""

from __future__ import annotations

import numpy as np

from exemplar.scoring.config import ScoreConfig
from exemplar.scoring.crossfit import base_learners, combine_folds, fit_fold, fold_assignment, resolve_learner
from tasks._prefect import stage_task
from tasks.datasets import read_dataset, read_keep, split_rows
from tasks.layout import RunLayout
from exemplar.data.canonical import input_array, native_table


def needs_crossfit(cfg: dict) -> bool:
    """Whether any requested signal reads the cross-fitted probabilities."""
    from exemplar.scoring.registry import NEEDS

    return any(NEEDS.get(name) == "crossfit" for name in cfg["score"]["signals"])


def learner_inputs(dataset, learner: str):
    """What the out-of-sample learner reads: for ``hgb`` on a table, the native frame (numbers with NaN,
    pandas categories: native gaps and categories); otherwise the model inputs (images in [0, 1],
    encoded tables). For an ensemble (``hgb+logistic``): a dict of each base learner's inputs."""
    bases = base_learners(learner)
    if len(bases) > 1:
        return {base: learner_inputs(dataset, base) for base in bases}
    if dataset.info.modality == "table" and learner == "hgb":
        return native_table(dataset)
    return input_array(dataset)


def _inputs(run_dir: str, learner_setting: str) -> tuple[object, np.ndarray, np.ndarray, int, str]:
    """(learner inputs, labels (N,), is_fit (N,) = kept training rows, num_classes, resolved learner) of the run."""
    layout = RunLayout(run_dir)
    dataset = read_dataset(layout.dataset)
    labels = dataset.table["label"].to_numpy(dtype=np.int64)
    is_fit = split_rows(dataset, "train") & read_keep(layout.keep, dataset.table["id"])
    learner = resolve_learner(learner_setting, dataset.info.modality)
    return learner_inputs(dataset, learner), labels, is_fit, dataset.info.num_classes, learner


@stage_task("crossfit-fold")
def crossfit_fold(cfg: dict, run_dir: str, fold: int) -> np.ndarray:
    """(N, num_classes) probabilities of the model fit without `fold` (and without non-training rows)."""
    config = ScoreConfig(**cfg["score"]).oos
    x, labels, is_fit, num_classes, learner = _inputs(run_dir, config.learner)
    assignment = fold_assignment(labels, is_fit, config.folds, config.seed)
    return fit_fold(x, labels, assignment, fold, num_classes, learner, config)


def combine(cfg: dict, run_dir: str, fold_probs: list[np.ndarray]) -> np.ndarray:
    """(N, num_classes) out-of-sample probabilities from the K fold results."""
    config = ScoreConfig(**cfg["score"]).oos
    _, labels, is_fit, _, _ = _inputs(run_dir, config.learner)
    return combine_folds(fold_probs, fold_assignment(labels, is_fit, config.folds, config.seed))
