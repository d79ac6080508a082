"""Near-duplicate groups: rows whose vectors point in almost the same direction.

Two rows are near duplicates when their cosine similarity cos(u, v) = u.v / (|u| |v|) is at least
the threshold; groups are the connected components of that "near duplicate" graph (so a chain
a~b~c forms one group even if cos(a, c) is a little lower). Neighbours come from scikit-learn's
``NearestNeighbors(metric="cosine").radius_neighbors_graph`` (chunked, vectorised), not a Python
loop over pairs. Vectors: centred pixels for images (the mean image subtracted, so a shared dark
background does not make every pair similar), standardized features for tables; above
:data:`MAX_DIMENSIONS` they are projected onto their top principal components first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import connected_components
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

MAX_DIMENSIONS = 256


def centred_pixels(pixels: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, C*H*W) float32 with the per-pixel mean subtracted."""
    flat = pixels.reshape(len(pixels), -1).astype(np.float32)
    return flat - flat.mean(axis=0, keepdims=True)


def reduce_dimensions(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Project (N, D) vectors onto at most MAX_DIMENSIONS principal components (unchanged if D is small)."""
    if vectors.shape[1] <= MAX_DIMENSIONS or len(vectors) <= MAX_DIMENSIONS:
        return vectors
    return PCA(n_components=MAX_DIMENSIONS, svd_solver="randomized", random_state=seed).fit_transform(vectors).astype(np.float32)


def near_duplicate_groups(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) int64 group number per row (0, 1, ...; -1 for rows with no near duplicate).

    `vectors`: (N, D). Groups are numbered in order of their first row.
    """
    n = len(vectors)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    finder = NearestNeighbors(radius=max(1.0 - threshold, 1e-9), metric="cosine", algorithm="brute")
    graph = finder.fit(vectors).radius_neighbors_graph(vectors, mode="connectivity")
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    component = np.where(sizes[component] > 1, component, -1)
    return _renumber(component)


def _renumber(component: np.ndarray) -> np.ndarray:
    """Relabel group numbers 0, 1, ... in order of first appearance; -1 stays -1."""
    out = np.full(len(component), -1, dtype=np.int64)
    grouped = component >= 0
    if grouped.any():
        _, first, inverse = np.unique(component[grouped], return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        out[grouped] = order[inverse]
    return out


def near_duplicate_table(ids: pd.Series, splits: pd.Series, groups: np.ndarray) -> pd.DataFrame:
    """Per row: ``near_duplicate_group`` and ``near_duplicate_of`` (the group's first training row,
    else its first row; "" for that row itself and for rows without a group)."""
    frame = pd.DataFrame({"id": ids.to_numpy(), "group": groups, "is_test": (splits != "train").to_numpy()})
    frame["order"] = np.arange(len(frame))
    member = frame[frame["group"] >= 0].sort_values(["group", "is_test", "order"], kind="stable")
    representative = member.groupby("group")["id"].first()
    of = frame["group"].map(representative).fillna("").astype(str).to_numpy()
    of = np.where(of == frame["id"].to_numpy(), "", of)
    return pd.DataFrame({"id": frame["id"], "near_duplicate_group": groups, "near_duplicate_of": of})
