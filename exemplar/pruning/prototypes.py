"""Prototype score (Sorscher et al., "Beyond neural scaling laws", NeurIPS 2022).

k-means on an embedding; an example's score is its distance to the nearest centroid: far from every
prototype = hard/atypical (high score), close to one = easy/prototypical. Label-free. Sorscher et al.
use a *self-supervised* embedding (SwAV); here the embedding is the penultimate layer of the proxy
classifier, which was trained on the labels, so it is a *supervised* embedding: it clusters by the given
labels, and rows with wrong labels may sit far from every cluster.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans


def prototype_score(embeddings: np.ndarray, clusters: int, seed: int = 0) -> np.ndarray:
    """(N,) Euclidean distance of each L2-normalised (N, D) embedding to its nearest of `clusters` k-means
    centroids (cosine geometry: the scale of an embedding does not matter)."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    k = max(1, min(clusters, len(unit)))
    model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(unit.astype(np.float64))
    return model.transform(unit.astype(np.float64)).min(axis=1)
