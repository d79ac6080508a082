"""Cross-fitted (out-of-sample) class probabilities for every row, and the signals read from them.

K-fold cross-fitting (Northcutt, Jiang, Chuang, "Confident Learning", JAIR 2021, Sec. 4): the fitted
rows are split into K stratified, seeded folds; fold k's model is fit on the other K-1 folds and
predicts the rows of fold k, so every fitted row gets probabilities from a model that never saw it.
Rows outside the fit set (test rows, rows the filter dropped) get the mean of the K fold models,
none of which saw them either.

The learner is small and independent of the pipeline's neural population (so a score stage can run
whatever trained the population): ``hgb`` = scikit-learn's HistGradientBoostingClassifier (native
categories and NaN when given a table's native frame; the default for tables), ``logistic`` =
multinomial logistic regression on standardised inputs, projected by PCA to at most ``max_features``
dimensions (the default for images: cheap, measured in docs/scoring.md), and ``hgb+logistic`` = both
fit on the same fold's rows, their probabilities averaged with equal weights (an ensemble; measured in
docs/scoring.md, not the default). Pure: arrays (or a table's native DataFrame, or for an ensemble a dict
of each base learner's inputs) in, probabilities out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from exemplar.errors import ExemplarError

BASE_LEARNERS = ("hgb", "logistic")
LEARNERS = ("auto", *BASE_LEARNERS, "hgb+logistic")  # a+b: an equal-weight ensemble of base learners
# what a learner reads: an (N, ...) array, a table's native frame, or for an ensemble each base learner's own
LearnerInputs = np.ndarray | pd.DataFrame | dict[str, np.ndarray | pd.DataFrame]


@dataclass
class CrossfitConfig:
    learner: str = "auto"  # auto (tables: hgb, images: logistic) | hgb | logistic | hgb+logistic
    folds: int = 5  # K
    seed: int = 0  # fold assignment and learner seed
    max_features: int = 256  # logistic: PCA to at most this many dimensions (images)
    max_iter: int = 200  # hgb: boosting iterations (early-stopped); logistic: solver iterations
    threads: int = 1  # BLAS/OpenMP threads per fold fit (folds are the unit of parallelism)

    def validate(self) -> None:
        """Raise ExemplarError naming the first bad setting and its fix."""
        if self.learner not in LEARNERS:
            raise ExemplarError(f"score.oos.learner must be one of {LEARNERS}, got '{self.learner}'.")
        if self.folds < 2:
            raise ExemplarError(f"score.oos.folds must be >= 2, got {self.folds}. Fix: e.g. score.oos.folds=5.")
        if self.max_features < 1 or self.max_iter < 1 or self.threads < 1:
            raise ExemplarError("score.oos.max_features, score.oos.max_iter and score.oos.threads must be >= 1.")


def resolve_learner(learner: str, modality: str) -> str:
    """``auto`` -> ``hgb`` for tables, ``logistic`` for images; anything else unchanged."""
    if learner != "auto":
        return learner
    return "hgb" if modality == "table" else "logistic"


def base_learners(learner: str) -> tuple[str, ...]:
    """The base learners behind a resolved learner name: ``hgb+logistic`` -> ("hgb", "logistic")."""
    return tuple(learner.split("+"))


def fold_assignment(labels: np.ndarray, is_fit: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(N,) int fold of every fitted row (0..folds-1, stratified by label, seeded), -1 elsewhere.

    A class with fewer members than `folds` still gets its rows spread round-robin (scikit-learn
    warns and does the same); at least two fitted rows per fold are required.
    """
    rows = np.flatnonzero(is_fit)
    if len(rows) < 2 * folds:
        raise ExemplarError(f"cross-fitting needs at least {2 * folds} training rows for {folds} folds, got {len(rows)}. "
                            "Fix: lower score.oos.folds or drop the oos signals from score.signals.")
    assignment = np.full(len(labels), -1, dtype=np.int64)
    from sklearn.model_selection import StratifiedKFold  # here: settings are validated before scikit-learn loads

    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        for fold, (_, held) in enumerate(splitter.split(np.zeros(len(rows)), labels[rows])):
            assignment[rows[held]] = fold
    return assignment


def training_rows(assignment: np.ndarray, fold: int) -> np.ndarray:
    """(N,) bool: the rows fold `fold`'s model is fit on (fitted rows of every other fold)."""
    return (assignment >= 0) & (assignment != fold)


MAX_NATIVE_CATEGORIES = 250  # HistGradientBoostingClassifier accepts at most max_bins (255) categories


def _features(x):
    """(N, D) features: arrays as float64 (images flattened); a DataFrame (a table's native form: numbers
    with NaN, pandas categories) is kept, with categories wider than the learner accepts as ordinal codes."""
    if isinstance(x, pd.DataFrame):
        frame = x.reset_index(drop=True).copy()
        for name in frame.columns:
            if isinstance(frame[name].dtype, pd.CategoricalDtype) and len(frame[name].cat.categories) > MAX_NATIVE_CATEGORIES:
                frame[name] = frame[name].cat.codes.replace(-1, np.nan).astype(np.float64)
        return frame
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


HGB_VALIDATION_FRACTION = 0.1  # HistGradientBoostingClassifier's default held-out share for early stopping


def can_early_stop(labels: np.ndarray, fraction: float = HGB_VALIDATION_FRACTION) -> bool:
    """Whether HGB's early stopping can hold out `fraction` of these (n,) labels stratified by class:
    scikit-learn's split needs every class twice and at least one row per class on each side. A real table's
    rare class (one or two training rows, so a fold's training rows may hold one) fails it."""
    counts = np.unique(labels, return_counts=True)[1]
    held = int(np.ceil(fraction * len(labels)))
    return bool(counts.min() >= 2 and held >= len(counts) and len(labels) - held >= len(counts))


def _build(learner: str, config: CrossfitConfig, dims: int, labels: np.ndarray):
    """The base learner, unfitted, for fitting on (n,) `labels`: HGB early-stops on a stratified tenth of
    them where :func:`can_early_stop` allows, else runs all ``max_iter`` iterations; logistic regression
    reduces inputs wider than ``max_features`` (or than n, for a small image set) by PCA first."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if learner == "hgb":
        return HistGradientBoostingClassifier(max_iter=config.max_iter, early_stopping=can_early_stop(labels),
                                              validation_fraction=HGB_VALIDATION_FRACTION, random_state=config.seed,
                                              categorical_features="from_dtype")
    steps = [SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()]
    components = min(config.max_features, len(labels))  # PCA cannot keep more components than the fold has rows
    if dims > components:
        steps.append(PCA(components, random_state=config.seed))
    return make_pipeline(*steps, LogisticRegression(max_iter=config.max_iter, C=1.0))


def fit_fold(x: LearnerInputs, labels: np.ndarray, assignment: np.ndarray, fold: int, num_classes: int,
             learner: str, config: CrossfitConfig) -> np.ndarray:
    """Fit on the fitted rows outside `fold`; return (N, num_classes) probabilities for every row.

    `x`: (N, ...) numeric array, or for ``hgb`` on tables the native DataFrame (numbers with NaN, pandas
    categories: :func:`exemplar.data.canonical.native_table`), or a dict {base learner: its inputs}. An
    ensemble (``hgb+logistic``) fits each base learner on the same rows and averages their probabilities.
    Classes missing from the fold's training rows get probability 0.
    """
    bases = base_learners(learner)
    return np.mean([_fit_base(x[base] if isinstance(x, dict) else x, labels, assignment, fold, num_classes, base, config)
                    for base in bases], axis=0)


def _fit_base(x: np.ndarray | pd.DataFrame, labels: np.ndarray, assignment: np.ndarray, fold: int, num_classes: int,
              learner: str, config: CrossfitConfig) -> np.ndarray:
    """(N, num_classes) probabilities of one base learner fit on the fitted rows outside `fold`."""
    from threadpoolctl import threadpool_limits

    features = _features(x)
    if isinstance(features, pd.DataFrame) and learner != "hgb":
        raise ExemplarError(f"score.oos.learner={learner} needs numeric model inputs, not a table's native frame.")
    train = training_rows(assignment, fold)
    probs = np.zeros((len(x), num_classes), dtype=np.float64)
    with threadpool_limits(config.threads):  # BLAS/OpenMP oversubscription cost 40x on a loaded 2-core machine
        fit_on = features[train] if isinstance(features, np.ndarray) else features.loc[train]
        model = _build(learner, config, features.shape[1], labels[train]).fit(fit_on, labels[train])
        probs[:, model.classes_] = model.predict_proba(features)
    return probs


def combine_folds(fold_probs: list[np.ndarray], assignment: np.ndarray) -> np.ndarray:
    """(N, K) out-of-sample probabilities: fold k's rows from model k, other rows the mean of all models."""
    probs = np.mean(fold_probs, axis=0)
    for fold, fold_prob in enumerate(fold_probs):
        rows = assignment == fold
        probs[rows] = fold_prob[rows]
    return probs


def crossfit_probabilities(x: LearnerInputs, labels: np.ndarray, is_fit: np.ndarray, num_classes: int,
                           config: CrossfitConfig, modality: str = "table") -> np.ndarray:
    """All K folds in one call (the pipeline fans them out as tasks instead): (N, num_classes)."""
    assignment = fold_assignment(labels, is_fit, config.folds, config.seed)
    learner = resolve_learner(config.learner, modality)
    return combine_folds([fit_fold(x, labels, assignment, k, num_classes, learner, config) for k in range(config.folds)], assignment)


def self_confidence_score(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) 1 - p_y: out-of-sample self-confidence turned into "higher = more worth a look"."""
    return 1.0 - probs[np.arange(len(labels)), labels]


def normalized_margin_score(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) max_{k != y} p_k - p_y in [-1, 1] (cleanlab's normalized margin, negated)."""
    rows = np.arange(len(labels))
    others = probs.copy()
    others[rows, labels] = -np.inf
    return others.max(axis=1) - probs[rows, labels]


def label_issues(probs: np.ndarray, labels: np.ndarray, is_fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's confident-learning flags and label-quality score.

    Returns ((N,) bool ``is_label_issue`` from ``cleanlab.filter.find_label_issues``, and (N,)
    ``label_issue_score`` = 1 - ``cleanlab.rank.get_label_quality_scores`` with per-class-threshold
    adjusted self-confidence). Thresholds come from the fitted rows; other rows are judged separately.
    ``n_jobs=1``: cleanlab's default forks a multiprocessing pool, which deadlocked the score stage (a
    fork of a process running Prefect's threads inherits held locks; 3 of 7 pipeline processes hung here).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flags = np.zeros(len(labels), dtype=bool)
    for rows in (np.flatnonzero(is_fit), np.flatnonzero(~is_fit)):
        if len(rows) and len(np.unique(labels[rows])) > 1:
            flags[rows] = find_label_issues(labels[rows], _clipped(probs[rows]), filter_by="prune_by_noise_rate", n_jobs=1)
    quality = get_label_quality_scores(labels, _clipped(probs), method="self_confidence", adjust_pred_probs=True)
    return flags, 1.0 - quality


def _clipped(probs: np.ndarray) -> np.ndarray:
    """Rows renormalised after clipping to [1e-9, 1] (cleanlab rejects exact zeros in some paths)."""
    clipped = np.clip(probs, 1e-9, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)


def crossfit_signals(probs: np.ndarray, labels: np.ndarray, is_fit: np.ndarray) -> dict[str, np.ndarray]:
    """The (N,) out-of-sample signals by name: ``oos_confidence``, ``oos_margin``, ``label_issue`` and the
    boolean ``is_label_issue``."""
    flags, quality = label_issues(probs, labels, is_fit)
    return {"oos_confidence": self_confidence_score(probs, labels), "oos_margin": normalized_margin_score(probs, labels),
            "label_issue": quality, "is_label_issue": flags}
