"""What a compressed model costs and where it loses: predictions, per-class accuracy, size on disk,
CPU latency, and the per-class impact test of Hooker et al. (arXiv 1911.05248, section 3)."""

from __future__ import annotations

import gzip
import io
import math
import time
import warnings

import numpy as np
import pandas as pd
import torch
from scipy import special
from torch import nn


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """(N, ...) inputs -> (N, K) float32 logits of `model(x)`, in chunks of `batch_size`."""
    return torch.cat([model(x[begin : begin + batch_size]) for begin in range(0, len(x), batch_size)]).float().numpy()


def class_accuracy(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) predicted and given labels -> (K,) accuracy per given class (NaN for a class with no rows)."""
    hits = np.bincount(labels, weights=(predictions == labels).astype(float), minlength=num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def population_accuracy(predictions: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> float:
    """Mean over the S models of top-1 accuracy on the selected rows ((S, N) labels, (N,) bool rows);
    NaN when no row is selected."""
    if not rows.any():
        return math.nan
    return float((predictions[:, rows] == labels[rows]).mean())


@torch.no_grad()
def latency_ms(model: nn.Module, batch: torch.Tensor, repeats: int = 5) -> float:
    """Median wall time in milliseconds of `model(batch)` over `repeats` runs after one warm-up."""
    model(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(batch)
        times.append(time.perf_counter() - started)
    return 1000.0 * float(np.median(times))


def used_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a model needs to run: for an FX graph (PT2E) those its graph reads, else its
    state dict (parameters and buffers). Tensor subclasses (torchao int8) count as stored."""
    if isinstance(model, torch.fx.GraphModule):
        names = [node.target for node in model.graph.nodes if node.op == "get_attr"]
        return {name: tensor for name in names if isinstance(tensor := _attribute(model, name), torch.Tensor)}
    return dict(model.state_dict())


def _attribute(model: nn.Module, dotted: str):
    value = model
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def serialized_bytes(model: nn.Module) -> tuple[int, int]:
    """(bytes of ``torch.save`` of the tensors the model uses, bytes after gzip): the size on disk
    as stored, and as compressed files would be shipped (zeros from pruning compress well)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach() for k, v in used_tensors(model).items()}, buffer)
    raw = buffer.getvalue()
    return len(raw), len(gzip.compress(raw, compresslevel=6))


def class_impact(dense: np.ndarray, compressed: np.ndarray) -> pd.DataFrame:
    """Per-class impact over a population, as in Hooker et al.: (S, K) per-model class accuracies of the
    dense and compressed populations -> one row per class with the mean accuracies, ``change`` =
    compressed - dense, ``relative_change`` = change - (change of the mean over classes) (negative:
    the class loses more than the model as a whole), and Welch's t-test (unequal variances) between
    the two populations' accuracies for that class (NaN with fewer than 2 models per side)."""
    with warnings.catch_warnings():  # a class without test rows has NaN accuracies in every model: its row stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        dense_mean, compressed_mean = np.nanmean(dense, axis=0), np.nanmean(compressed, axis=0)
    change = compressed_mean - dense_mean
    overall = float(np.nanmean(compressed) - np.nanmean(dense))
    t_stat, p_value = _welch(dense, compressed)
    return pd.DataFrame(
        {
            "class": np.arange(dense.shape[1]), "dense_accuracy": dense_mean, "compressed_accuracy": compressed_mean,
            "change": change, "relative_change": change - overall, "t_statistic": t_stat, "p_value": p_value,
        }
    )


def _welch(dense: np.ndarray, compressed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nan = np.full(dense.shape[1], np.nan)
    if len(dense) < 2 or len(compressed) < 2:
        return nan, nan
    return welch_t_test(compressed, dense)


def welch_t_test(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welch's unequal-variance t-test per column of (n_a, K) and (n_b, K) samples (NaNs propagate):

        t = (mean_a - mean_b) / sqrt(v_a / n_a + v_b / n_b)     (v: sample variances, ddof 1)
        df = (v_a/n_a + v_b/n_b)^2 / ((v_a/n_a)^2 / (n_a - 1) + (v_b/n_b)^2 / (n_b - 1))
        p = 2 * P(T_df > |t|)                                  (two-sided)

    As ``scipy.stats.ttest_ind(a, b, equal_var=False)``; NaN where both variances are 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = len(a), len(b)
    se_a, se_b = a.var(axis=0, ddof=1) / n_a, b.var(axis=0, ddof=1) / n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(se_a + se_b)
        df = (se_a + se_b) ** 2 / (se_a**2 / (n_a - 1) + se_b**2 / (n_b - 1))
    return t, 2.0 * t_sf(np.abs(t), df)


def t_sf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Student's t survival function, bit for bit ``scipy.stats.t.sf(x, df)`` (which computes
    ``special.stdtr(df, -x)``; NaN where df is not positive), without loading scipy.stats (about 0.8 s)."""
    x, df = np.asarray(x, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, special.stdtr(np.where(df > 0, df, 1.0), -x), np.nan)


def bootstrap_interval(values: np.ndarray, statistic=np.mean, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over the (n,) `values` (rows resampled with
    replacement; seeded); (NaN, NaN) for no values."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), size=(resamples, len(values)))]
    estimates = statistic(draws, axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(estimates, tail)), float(np.quantile(estimates, 1.0 - tail))


def bootstrap_difference(first: np.ndarray, second: np.ndarray, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(first) - mean(second), the two groups resampled independently."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(first) == 0 or len(second) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    a = first[rng.integers(0, len(first), size=(resamples, len(first)))].mean(axis=1)
    b = second[rng.integers(0, len(second), size=(resamples, len(second)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(a - b, tail)), float(np.quantile(a - b, 1.0 - tail))
