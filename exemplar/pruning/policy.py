"""Pruning by score: which training rows a ``keep`` policy keeps.

A policy ranks the training rows left after duplicate removal (the *candidates*) by one score and keeps

- ``keep=hard``: the highest scores (Paul et al. 2021 keep high-EL2N/GraNd rows; Sorscher et al. 2022
  keep hard rows when data is plentiful),
- ``keep=easy``: the lowest scores (Sorscher et al.: better when data is scarce),
- ``keep=drop_top``: the same rows as ``easy`` (all but the highest scores), named for the cleaning
  intent: drop the top-k most suspicious rows (e.g. by ``audit_score``).

Quotas: ``n_keep = count_kept`` or ``round(fraction_kept * n_candidates)``, kept exactly. With
``class_balanced`` every class keeps the same fraction (largest-remainder apportionment of ``n_keep``
over class sizes); otherwise one global ranking decides. Either way every class keeps at least
``min(min_per_class, its size)`` rows, and a request that cannot be met fails before any training.
The result is a mask (never a rewrite): dropped candidates get ``drop_reason = "pruned_<score>_<keep>"``
(``pruned_random`` for the random baseline) and every row its ``prune_value`` (the score it was ranked by; NaN when not ranked; not named ``*_score`` so the report does not fuse it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from exemplar.errors import ExemplarError, describe_ids
from exemplar.pruning.config import FILE_ONLY_SCORES, KEEP_DIRECTIONS, LABEL_FREE_SCORES, PruneConfig, score_column, score_name


def known_scores() -> list[str]:
    """Every name ``prune.score`` accepts: registered scorers, ``prototype``, ``random`` and ``audit``."""
    from exemplar.scoring.registry import SCORERS

    return sorted(set(SCORERS) | set(LABEL_FREE_SCORES) | set(FILE_ONLY_SCORES))


def check_prune_settings(config: PruneConfig) -> None:
    """Raise ExemplarError for a pruning request that cannot work, before anything is trained.

    Checks the fraction or count, the direction, the score name, the proxy settings and, when
    ``scores_from`` is set, that the file exists and holds ``id`` (and the score's column when pruning). Ids are
    checked against the data later (:func:`check_score_ids`), once the data set is read.
    """
    if not 0.0 < config.fraction_kept <= 1.0:
        raise ExemplarError(
            f"prune.fraction_kept must lie in (0, 1], got {config.fraction_kept}: 0 would keep no training row and "
            "values above 1 would keep more rows than exist. Fix: e.g. prune.fraction_kept=0.5, or 1.0 for no pruning."
        )
    if config.count_kept is not None and config.count_kept < 1:
        raise ExemplarError(f"prune.count_kept must be >= 1 (or null to use prune.fraction_kept), got {config.count_kept}.")
    if config.keep not in KEEP_DIRECTIONS:
        raise ExemplarError(f"prune.keep must be one of {KEEP_DIRECTIONS}, got '{config.keep}'. Fix: e.g. prune.keep=hard.")
    if score_name(config.score) not in known_scores():
        raise ExemplarError(f"prune.score '{config.score}' is not a known score. Fix: use one of {known_scores()}.")
    if config.min_per_class < 0 or config.proxy_epochs < 1 or config.proxy_seeds < 1 or config.proxy_el2n_epoch < 1:
        raise ExemplarError("prune.min_per_class must be >= 0 and prune.proxy_epochs, prune.proxy_seeds, prune.proxy_el2n_epoch >= 1.")
    if config.prototype_clusters is not None and config.prototype_clusters < 1:
        raise ExemplarError(f"prune.prototype_clusters must be >= 1 (or null for the number of classes), got {config.prototype_clusters}.")
    if config.scores_from:
        needed = config.is_pruning and score_name(config.score) != "random"
        check_scores_file(config.scores_from, [config.score] if needed else [])


def stored_score_names(path: str) -> list[str]:
    """Canonical names of the ``<name>_score`` columns a scores file holds."""
    return [score_name(c) for c in pq.read_schema(path).names if c.endswith("_score")]


def check_scores_file(path: str, names: list[str]) -> None:
    """Raise unless `path` is a Parquet file with an ``id`` column and a ``<name>_score`` column per name."""
    if not Path(path).is_file():
        raise ExemplarError(f"prune.scores_from '{path}' is not a file. Fix: pass the scores.parquet of an earlier run, e.g. prune.scores_from=/abs/runs/x/scores.parquet.")
    try:
        columns = pq.read_schema(path).names
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise ExemplarError(f"prune.scores_from '{path}' is not a readable Parquet file ({error}). Fix: pass a scores.parquet.") from error
    missing = [c for c in ["id", *map(score_column, names)] if c not in columns]
    if missing:
        raise ExemplarError(
            f"prune.scores_from '{path}' has no column(s) {missing} (it has {len(columns)}: {', '.join(columns[:12])}...). "
            "Fix: choose a prune.score that the file holds, or a scores.parquet from a run that computed it."
        )


def check_score_ids(scores: pd.Series, ids: np.ndarray, source: str) -> None:
    """Raise unless `scores` (indexed by id) has a finite value for every id in `ids` (the candidates)."""
    values = scores.reindex(ids)
    missing = ids[values.isna().to_numpy()]
    if len(missing):
        raise ExemplarError(
            f"{source} has no {scores.name or 'score'} for {len(missing)} of the {len(ids)} training row(s) to rank: "
            f"{describe_ids(missing)}. Fix: use the scores.parquet of a run on this same data set, or leave "
            "prune.scores_from unset so a proxy run computes the score."
        )


def keep_count(candidates: int, fraction: float, count: int | None) -> int:
    """How many candidates to keep: ``count`` (at most all of them) or ``round(fraction * candidates)``."""
    return min(int(count), candidates) if count is not None else int(round(fraction * candidates))


def class_floors(sizes: np.ndarray, min_per_class: int) -> np.ndarray:
    """(K,) the fewest rows each class keeps: ``min(min_per_class, size)``."""
    return np.minimum(sizes, min_per_class)


def proportional_quotas(sizes: np.ndarray, total: int, floors: np.ndarray) -> np.ndarray:
    """(K,) int quotas summing exactly to `total`, each within [floor, size], near ``total * size / sum(size)``.

    Largest-remainder apportionment: start from the floored proportional shares clipped to the bounds,
    then add (or remove) one row at a time where the quota is furthest below (above) its share.
    """
    share = total * sizes / max(sizes.sum(), 1)
    quotas = np.clip(np.floor(share).astype(np.int64), floors, sizes)
    while quotas.sum() < total:
        room = np.where(quotas < sizes, share - quotas, -np.inf)
        quotas[np.argmax(room)] += 1
    while quotas.sum() > total:
        excess = np.where(quotas > floors, quotas - share, -np.inf)
        quotas[np.argmax(excess)] -= 1
    return quotas


def priority_order(priority: np.ndarray) -> np.ndarray:
    """Row indices from the most to the least wanted (ties: earlier row first)."""
    return np.lexsort((np.arange(len(priority)), -priority))


def select_balanced(priority: np.ndarray, labels: np.ndarray, quotas: np.ndarray) -> np.ndarray:
    """(N,) bool: within each class c, the ``quotas[c]`` rows of highest `priority`."""
    order = priority_order(priority)
    ordered_labels = labels[order]
    rank_in_class = np.empty(len(order), dtype=np.int64)
    for c in np.unique(labels):
        where = ordered_labels == c
        rank_in_class[where] = np.arange(where.sum())
    keep = np.zeros(len(priority), dtype=bool)
    keep[order] = rank_in_class < quotas[ordered_labels]
    return keep


def select_global(priority: np.ndarray, labels: np.ndarray, total: int, floors: np.ndarray) -> np.ndarray:
    """(N,) bool: the `total` rows of highest `priority`, then each class short of its floor takes its
    best dropped rows in place of the least wanted kept rows of classes above their floors."""
    order = priority_order(priority)
    keep = np.zeros(len(priority), dtype=bool)
    keep[order[:total]] = True
    kept = np.bincount(labels[keep], minlength=len(floors))
    for c in np.flatnonzero(kept < floors):
        dropped = order[~keep[order] & (labels[order] == c)]
        keep[dropped[: floors[c] - kept[c]]] = True
    kept = np.bincount(labels[keep], minlength=len(floors))
    surplus = int(kept.sum() - total)
    for row in order[::-1]:
        if surplus == 0:
            break
        if keep[row] and kept[labels[row]] > floors[labels[row]]:
            keep[row], kept[labels[row]], surplus = False, kept[labels[row]] - 1, surplus - 1
    return keep


def select_rows(scores: np.ndarray, labels: np.ndarray, config: PruneConfig, num_classes: int, class_names: list[str]) -> np.ndarray:
    """(N,) bool keep mask over N candidate rows with (N,) `scores` and (N,) int `labels`.

    Raises ExemplarError when the quota keeps no row, cannot honour ``min_per_class``, or empties a class.
    """
    sizes = np.bincount(labels, minlength=num_classes)
    total = keep_count(len(scores), config.fraction_kept, config.count_kept)
    floors = class_floors(sizes, config.min_per_class)
    _check_quota(total, len(scores), floors, config)
    priority = scores if config.keep == "hard" else -scores
    if config.class_balanced:
        keep = select_balanced(priority, labels, proportional_quotas(sizes, total, floors))
    else:
        keep = select_global(priority, labels, total, floors)
    emptied = [class_names[c] for c in np.flatnonzero((sizes > 0) & (np.bincount(labels[keep], minlength=num_classes) == 0))]
    if emptied:
        raise ExemplarError(
            f"pruning by {config.score} ({config.keep}, global quota) would remove every training row of class(es) "
            f"{emptied}. Fix: set prune.class_balanced=true or prune.min_per_class >= 2, or keep more (prune.fraction_kept)."
        )
    return keep


def _check_quota(total: int, candidates: int, floors: np.ndarray, config: PruneConfig) -> None:
    asked = f"prune.count_kept={config.count_kept}" if config.count_kept is not None else f"prune.fraction_kept={config.fraction_kept}"
    if total < 1:
        raise ExemplarError(f"{asked} of {candidates} training rows keeps none. Fix: keep more rows (a larger fraction or count).")
    if floors.sum() > total:
        raise ExemplarError(
            f"{asked} keeps {total} of {candidates} training rows, but prune.min_per_class={config.min_per_class} over "
            f"{int((floors > 0).sum())} classes needs {int(floors.sum())}. Fix: keep more rows or lower prune.min_per_class."
        )


def drop_reason(config: PruneConfig) -> str:
    """The ``drop_reason`` of rows this policy removed, e.g. ``pruned_el2n_hard`` or ``pruned_random``."""
    name = score_name(config.score)
    return "pruned_random" if name == "random" else f"pruned_{name}_{config.keep}"


def random_scores(ids: np.ndarray, seed: int) -> pd.Series:
    """Uniform random ``random_score`` per id (seeded): the baseline every score must beat."""
    return pd.Series(np.random.default_rng(seed).random(len(ids)), index=pd.Index(ids, name="id"), name="random_score")


def apply_policy(mask: pd.DataFrame, table: pd.DataFrame, scores: pd.Series, config: PruneConfig, class_names: list[str]) -> tuple[pd.DataFrame, dict]:
    """Prune the candidates (training rows still kept in `mask`) by `scores` (indexed by id).

    `mask`: the filter's frame aligned with `table` (``id``, ``keep``, ``drop_reason``, ...);
    `table`: ``id``, ``split``, ``label``. Returns (a new mask with ``prune_value`` added, summary).
    """
    is_candidate = mask["keep"].to_numpy() & (table["split"] == "train").to_numpy()
    ids = table["id"].to_numpy()[is_candidate]
    check_score_ids(scores, ids, config.scores_from or "the proxy run")
    values = scores.reindex(ids).to_numpy(dtype=np.float64)
    labels = table["label"].to_numpy()[is_candidate]
    keep = select_rows(values, labels, config, len(class_names), class_names)
    out = mask.copy()
    out["prune_value"] = np.nan
    out.loc[is_candidate, "prune_value"] = values
    dropped = np.flatnonzero(is_candidate)[~keep]
    out.loc[dropped, "keep"] = False
    out.loc[dropped, "drop_reason"] = drop_reason(config)
    return out, _summary(config, labels, keep, class_names)


def _summary(config: PruneConfig, labels: np.ndarray, keep: np.ndarray, class_names: list[str]) -> dict:
    per_class = np.bincount(labels, minlength=len(class_names))
    kept = np.bincount(labels[keep], minlength=len(class_names))
    return {
        "score": score_name(config.score), "keep": config.keep, "rule": drop_reason(config),
        "fraction_kept": config.fraction_kept, "count_kept": config.count_kept, "class_balanced": config.class_balanced,
        "min_per_class": config.min_per_class, "source": config.scores_from or "proxy",
        "candidates": int(len(labels)), "kept": int(keep.sum()), "dropped": int((~keep).sum()),
        "dropped_per_class": {name: int(n - k) for name, n, k in zip(class_names, per_class, kept)},
        "kept_per_class": {name: int(k) for name, k in zip(class_names, kept)},
    }
