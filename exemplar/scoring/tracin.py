"""TracIn (Pruthi et al., NeurIPS 2020), the checkpoint form TracInCP:

    TracInCP(z, z') = sum_i eta_i * g_i(z) . g_i(z'),   g_i(z) = d L(w_i, z) / dw

over saved checkpoints w_i, with eta_i the mean learning rate since the previous checkpoint.
``self_influence(z) = sum_i eta_i ||g_i(z)||^2``. The cosine variant replaces each dot product by
g.g' / (||g|| ||g'||), so that a few huge-gradient (often mislabelled) points do not become the top
opponents of everything.

Gradients are held per checkpoint as "features" exposing ``kernel(a, b)`` (the (A, B) matrix of
gradient dot products) and ``squared_norms()``:

- :class:`LastLayerFeatures`: exact last-layer gradients in factorised form. For cross-entropy and a
  final linear layer with weight W (K x D) and bias b, dL/dW = (p - onehot(y)) e^T and dL/db = p - onehot(y),
  so g.g' = (dy . dy') (e . e' + 1) with dy = p - onehot(y) and e the penultimate embedding.
- :class:`DenseFeatures`: any (N, d) gradient matrix (selected layers, or all parameters after a
  Johnson-Lindenstrauss projection, see :mod:`exemplar.scoring.gradients`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from exemplar.scoring.signals import softmax_error

EPS = 1e-12


@dataclass
class LastLayerFeatures:
    errors: np.ndarray  # (N, K) softmax(z) - onehot(y)
    inputs: np.ndarray  # (N, D + 1) penultimate embedding with a constant 1 appended (the bias)

    @classmethod
    def from_outputs(cls, logits: np.ndarray, embeddings: np.ndarray, labels: np.ndarray) -> LastLayerFeatures:
        """Build from (N, K) logits, (N, D) embeddings and (N,) labels of one checkpoint."""
        errors = softmax_error(logits, labels)
        ones = np.ones((len(embeddings), 1), dtype=np.float64)
        return cls(errors, np.concatenate([embeddings.astype(np.float64), ones], axis=1))

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(A, B) matrix g(z_a) . g(z_b) for row indices `a` and `b`."""
        return (self.errors[a] @ self.errors[b].T) * (self.inputs[a] @ self.inputs[b].T)

    def squared_norms(self) -> np.ndarray:
        """(N,) ||g(z)||^2 = ||dy||^2 (||e||^2 + 1)."""
        return (self.errors**2).sum(axis=1) * (self.inputs**2).sum(axis=1)

    def kernel_norms(self) -> np.ndarray:
        """(N,) norms consistent with :meth:`kernel` (for the cosine variant)."""
        return np.sqrt(self.squared_norms())


@dataclass
class DenseFeatures:
    """Per-example gradients of selected layers or all parameters.

    ``grads`` (N, d) are the (possibly JL-projected) gradients used for pairwise influence;
    ``exact_squared`` (N,) are the exact ||g||^2 (self-influence needs no projection), or None when
    ``grads`` are exact. Without them ``grads`` may be None (self-influence only).
    """

    grads: np.ndarray | None
    exact_squared: np.ndarray | None = None

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.grads[a].astype(np.float64) @ self.grads[b].astype(np.float64).T

    def kernel_norms(self) -> np.ndarray:
        return np.sqrt((self.grads.astype(np.float64) ** 2).sum(axis=1))

    def squared_norms(self) -> np.ndarray:
        if self.exact_squared is not None:
            return self.exact_squared
        return (self.grads.astype(np.float64) ** 2).sum(axis=1)


def self_influence(features: list, lrs: list[float]) -> np.ndarray:
    """(N,) sum_i eta_i ||g_i(z)||^2 over checkpoints (`features[i]`, `lrs[i]`); exact even when
    pairwise influence uses projected gradients."""
    return sum(lr * f.squared_norms() for f, lr in zip(features, lrs, strict=True))


def influence_matrix(features: list, lrs: list[float], a: np.ndarray, b: np.ndarray, cosine: bool = False) -> np.ndarray:
    """(A, B) TracInCP(z_a, z_b) (or its per-checkpoint cosine form) for row indices `a`, `b`."""
    total = np.zeros((len(a), len(b)))
    for f, lr in zip(features, lrs, strict=True):
        block = f.kernel(a, b)
        if cosine:
            norms = f.kernel_norms()
            block = block / np.maximum(np.outer(norms[a], norms[b]), EPS)
        total += lr * block
    return total


def top_influences(
    features: list, lrs: list[float], queries: np.ndarray, candidates: np.ndarray, k: int,
    cosine: bool = False, chunk_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each query row, the k candidates with the highest (proponents) and lowest (opponents) influence.

    Returns (proponent index (Q, k), proponent influence (Q, k), opponent index, opponent influence);
    indices are into `candidates`' values (row numbers), ordered best first. Memory is chunk_size x C.
    """
    k = min(k, len(candidates))
    out = [np.zeros((len(queries), k), dtype=t) for t in (np.int64, np.float64, np.int64, np.float64)]
    for begin in range(0, len(queries), chunk_size):
        rows = slice(begin, begin + chunk_size)
        block = influence_matrix(features, lrs, queries[rows], candidates, cosine)
        for (index, value), sign in zip(((out[0], out[1]), (out[2], out[3])), (-1.0, 1.0)):
            order = np.argsort(sign * block, axis=1, kind="stable")[:, :k]
            index[rows] = candidates[order]
            value[rows] = np.take_along_axis(block, order, axis=1)
    return tuple(out)


def topk_table(ids: np.ndarray, queries: np.ndarray, result: tuple, variant: str) -> pd.DataFrame:
    """Long table (test_id, train_id, kind, rank, influence, variant) from :func:`top_influences`."""
    frames = []
    for kind, index, value in (("proponent", result[0], result[1]), ("opponent", result[2], result[3])):
        q, k = index.shape
        frames.append(pd.DataFrame({
            "test_id": np.repeat(ids[queries], k), "train_id": ids[index.ravel()], "kind": kind,
            "rank": np.tile(np.arange(1, k + 1), q), "influence": value.ravel(), "variant": variant,
        }))
    return pd.concat(frames, ignore_index=True)
