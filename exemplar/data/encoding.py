"""Model inputs of a table: the stored feature columns (text, booleans, NaN kept) turned into one
standardised float matrix with scikit-learn, FIT ON TRAINING ROWS ONLY.

Per column type (see columns.py), with `m` = ``max_onehot_categories``:

- numeric: ``StandardScaler`` (mean/std of the training rows; NaN ignored when fitting), then
  ``SimpleImputer(strategy=numeric_imputation, add_indicator=True)``: a missing cell becomes the
  training median (or mean) of the scaled column, and every column with a missing training cell gains
  a 0/1 indicator column. Infinities count as missing. Indicators stay 0/1 (not rescaled) so a rare
  missing value cannot dominate a distance.
- categorical and boolean, at most `m` distinct training values: ``SimpleImputer(constant
  "(missing)")`` then ``OneHotEncoder(handle_unknown="ignore")``; the "(missing)" column is the
  indicator; a value never seen in training rows encodes as all zeros.
- categorical, more than `m` distinct training values (``high_cardinality``):
  ``target`` (default): ``TargetEncoder``, the smoothed per-class rate of the label within the
  category (one column, or one per class for more than two classes), cross-fitted over 5 stratified
  folds for the training rows, so a row's own label never enters its own encoding; it keeps what a
  category says about the label in a few columns, where an ordinal code would impose a meaningless
  order on an MLP and on every distance. ``infrequent``: label-free alternative, one-hot of the
  ``m - 1`` most frequent training values plus one "infrequent" column.
- datetime: the number of days since 1970-01-01 UTC (fractional; :func:`~exemplar.data.columns.parse_dates`),
  then as numeric (scaled, imputed, with its indicator); a cell that is not an ISO 8601 date is missing.
  ``categorical_columns`` can name a datetime column to treat its values as categories instead.
- a column that is all-missing or constant in the training rows is left out (ingest warns about it).

The result is a pure function of the table, its labels and the rows it is fit on, so every stage
rebuilds the same matrix from ``dataset.parquet``. Distances (input outliers, near duplicates) use it as is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

from exemplar.data.columns import ColumnProfile, is_missing, parse_dates
from exemplar.data.config import EncodingConfig
from exemplar.errors import ExemplarError

MISSING_CATEGORY = "(missing)"
TARGET_FOLDS = 5


@dataclass(frozen=True)
class ColumnPlan:
    """Which transformer each feature column goes to (names in table order)."""

    numeric: list[str]
    onehot: list[str]
    high: list[str]
    dropped: dict[str, str]  # column -> "all_missing" | "constant"


@dataclass
class Encoded:
    """The model inputs: `x` (N, D) float32 in table row order, `names` (D,) output column names."""

    x: np.ndarray
    names: list[str]
    plan: ColumnPlan


def plan_columns(features: pd.DataFrame, types: list[str], fit_rows: np.ndarray, config: EncodingConfig) -> ColumnPlan:
    """Route each column of `features` (N, F) by its type and its training cardinality."""
    dropped = ColumnProfile(list(features.columns)).update(features, fit_rows).problems()
    numeric, onehot, high = [], [], []
    for name, kind in zip(features.columns, types):
        if name in dropped:
            continue
        if kind == "numeric" and name not in config.categorical_columns:
            numeric.append(name)
            continue
        distinct = features[name][fit_rows & ~is_missing(features[name])].nunique()
        (onehot if distinct <= config.max_onehot_categories else high).append(name)
    return ColumnPlan(numeric, onehot, high, dropped)


def build_encoder(plan: ColumnPlan, config: EncodingConfig, labels: np.ndarray) -> ColumnTransformer:
    """The unfitted ColumnTransformer for `plan`; `labels` (n_fit,) picks the TargetEncoder folds."""
    parts = []
    if plan.numeric:
        impute = SimpleImputer(strategy=config.numeric_imputation, add_indicator=True)
        parts.append(("numeric", Pipeline([("scale", StandardScaler()), ("impute", impute)]), plan.numeric))
    if plan.onehot:
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("onehot", Pipeline([("missing", _missing_category()), ("onehot", onehot)]), plan.onehot))
    if plan.high:
        parts.append(("high", Pipeline([("missing", _missing_category()), ("encode", _high_encoder(config, labels))]), plan.high))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=True)


def _missing_category() -> SimpleImputer:
    return SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)


def _high_encoder(config: EncodingConfig, labels: np.ndarray):
    if config.high_cardinality == "infrequent":
        return OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=config.max_onehot_categories, sparse_output=False)
    counts = np.bincount(labels)
    folds = int(max(2, min(TARGET_FOLDS, counts[counts > 0].min())))
    return TargetEncoder(cv=StratifiedKFold(folds, shuffle=True, random_state=0))


def model_frame(features: pd.DataFrame, types: list[str], config: EncodingConfig) -> pd.DataFrame:
    """`features` as scikit-learn takes them: numeric float64 with NaN for missing or infinite cells,
    categories as text objects with NaN for missing."""
    out = {}
    for name, kind in zip(features.columns, types):
        column = features[name]
        if kind == "numeric" and name not in config.categorical_columns:
            out[name] = np.where(is_missing(column), np.nan, column.to_numpy(dtype=np.float64))
        elif kind == "datetime" and name not in config.categorical_columns:
            out[name] = parse_dates(column.to_numpy(dtype=object))  # days since 1970; unparsed cells missing
        else:
            out[name] = pd.Series(np.where(is_missing(column), np.nan, column.astype(object).map(_category)), dtype=object)
    return pd.DataFrame(out, index=features.index)


def _kinds(frame: pd.DataFrame) -> list[str]:
    """Column types of a :func:`model_frame` (booleans and coded numbers are categories there)."""
    return ["numeric" if frame[n].dtype.kind == "f" else "categorical" for n in frame.columns]


def _category(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def encode_features(features: pd.DataFrame, types: list[str], labels: np.ndarray, fit_rows: np.ndarray, config: EncodingConfig) -> Encoded:
    """Fit the encoding on the rows `fit_rows` ((N,) bool) and encode every row of `features` (N, F).

    `labels` (N,) int class codes are used only by the target encoder, only on `fit_rows`. Fit rows get
    their encoding from ``fit_transform`` (cross-fitted for target-encoded columns), the others from
    ``transform``; so no other row's values change the fitted encoder or a fit row's encoding.
    """
    if not fit_rows.any():
        raise ExemplarError("the table has no training rows to fit the feature encoding on. Fix: give some rows split 'train'.")
    frame = model_frame(features.reset_index(drop=True), types, config)
    plan = plan_columns(frame, _kinds(frame), fit_rows, config)
    if not (plan.numeric or plan.onehot or plan.high):
        raise ExemplarError(
            f"no usable feature column: every one is all-missing or constant in the training rows ({plan.dropped}). "
            "Fix: check data.feature_columns and that the features were exported with their values."
        )
    encoder = build_encoder(plan, config, labels[fit_rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown test categories are expected, and encoded as zeros
        fitted = encoder.fit_transform(frame[fit_rows], labels[fit_rows])
        x = np.zeros((len(frame), fitted.shape[1]), dtype=np.float32)
        x[fit_rows] = fitted
        if (~fit_rows).any():
            x[~fit_rows] = encoder.transform(frame[~fit_rows])
    return Encoded(x, [str(n) for n in encoder.get_feature_names_out()], plan)


def native_frame(features: pd.DataFrame, types: list[str], fit_rows: np.ndarray, config: EncodingConfig) -> pd.DataFrame:
    """The features for learners that handle gaps and categories themselves, e.g. scikit-learn's
    ``HistGradientBoostingClassifier(categorical_features="from_dtype")``: numbers as float64 with NaN
    for missing or infinite cells, categorical and boolean columns as pandas ``category`` whose
    categories are the values of the `fit_rows` ((N,) bool; other values become NaN). Columns that are
    all-missing or constant in the fit rows are left out, as in :func:`encode_features`.
    Shape (N, F'), rows in the order of `features`. (The gradient-boosting learner accepts at most 255
    categories per column; use :func:`encode_features` for wider ones.)"""
    frame = model_frame(features.reset_index(drop=True), types, config)
    plan = plan_columns(frame, _kinds(frame), fit_rows, config)
    out = frame[plan.numeric].copy()
    for name in [n for n in frame.columns if n in plan.onehot or n in plan.high]:
        seen = sorted(frame[name][fit_rows].dropna().unique())
        out[name] = pd.Categorical(frame[name], categories=seen)
    return out[[n for n in frame.columns if n in out.columns]]
