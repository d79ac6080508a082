"""Per-example parameter gradients, in chunks (memory bounded by ``chunk_size`` x parameters, never by N).

``method="kronecker"`` (the default of ``score.gradient_method``): when every selected parameter
belongs to an ``nn.Linear`` / plain ``nn.Conv2d`` called once per forward, per-example gradients are
never materialised: :mod:`exemplar.scoring.projection` gives the exact squared norms and a
Kronecker-factored (LoGra) random projection from one batched forward + backward per chunk. Exact
gradient matrices (``projection_dim: 0``) then come from ``hooks``; other layers fall back to
``vmap`` with a dense Gaussian projection.

Two exact methods that materialise the (B, P) gradients (``"auto"`` = hooks where the layers allow, else vmap):

- ``vmap``: ``torch.func.vmap(grad(...))`` over ``functional_call`` -- any architecture.
- ``hooks``: when every selected parameter is the weight or bias of an ``nn.Linear`` or an
  ``nn.Conv2d`` (groups=1, zero padding) called once per forward, one batched forward and one
  backward to the layers' outputs give each example's gradient as a per-example outer product:
  Linear dW_b = sum_t g_bt a_bt^T; Conv2d dW_b = G_b unfold(A_b)^T (Goodfellow 2015; what Opacus and
  Captum's ``sample_wise_grads_per_batch`` do). Which is faster depends on the model and machine:
  see benchmarks/results/scoring.json (``tracin_all``).

Used by all-parameter / selected-layer TracIn (with a seeded Johnson-Lindenstrauss projection for
pairwise influence) and by GraNd.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from exemplar.errors import ExemplarError
from exemplar.scoring.projection import ModuleRecorder, build_projections, factored_sketch, layer_io, runs_each_layer_once


def select_parameters(model: torch.nn.Module, prefixes: list[str] | None) -> dict[str, torch.Tensor]:
    """Named parameters whose name starts with one of `prefixes` (all of them when None or empty)."""
    named = dict(model.named_parameters())
    if not prefixes:
        return {name: p.detach() for name, p in named.items()}
    chosen = {name: p.detach() for name, p in named.items() if name.startswith(tuple(prefixes))}
    if not chosen:
        raise ExemplarError(
            f"score.tracin_layers {prefixes} match no parameter of the model. "
            f"Fix: use prefixes of these names: {sorted(named)}."
        )
    return chosen


def _example_loss_fn(model: torch.nn.Module, frozen: dict[str, torch.Tensor]):
    """f(params, x, y) = cross-entropy of one example (x without batch dim) under `params`."""

    def loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, {**frozen, **params}, (x[None],))
        return F.cross_entropy(logits, y[None])

    return loss


def _hookable_layers(model: torch.nn.Module, params: dict[str, torch.Tensor]) -> dict[str, nn.Module] | None:
    """Owner module of every selected parameter when all are Linear / plain Conv2d weights or biases."""
    modules, owners = dict(model.named_modules()), {}
    for name in params:
        owner, _, kind = name.rpartition(".")
        module = modules.get(owner)
        plain_conv = isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
        if kind not in ("weight", "bias") or not (isinstance(module, nn.Linear) or plain_conv):
            return None
        owners[owner] = module
    return owners


def _layer_grads(module: nn.Module, inputs: torch.Tensor, grad_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example (B, ...) weight and bias gradients of one layer from its input and output gradient."""
    batch = inputs.shape[0]
    if isinstance(module, nn.Linear):
        a, g = inputs.reshape(batch, -1, inputs.shape[-1]), grad_out.reshape(batch, -1, grad_out.shape[-1])
        return {"weight": torch.einsum("bto,bti->boi", g, a), "bias": g.sum(dim=1)}
    a = F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)  # (B, Cin*kh*kw, L)
    g = grad_out.flatten(2)  # (B, Cout, L)
    return {"weight": torch.einsum("bol,bil->boi", g, a).reshape(batch, *module.weight.shape), "bias": g.sum(dim=2)}


def _hooked_chunk(model: torch.nn.Module, owners: dict[str, nn.Module], names: list[str], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """(B, P) per-example gradients of one chunk with hooks; None if a layer ran more than once."""
    keys = list(owners)
    calls, loss = layer_io(model, [owners[key] for key in keys], x, y)
    seen = dict(zip(keys, calls))
    if any(len(recorded) != 1 for recorded in calls):
        return None
    grads_out = torch.autograd.grad(loss, [seen[key][0][1] for key in keys])
    per_layer = {key: _layer_grads(owners[key], seen[key][0][0], g) for key, g in zip(keys, grads_out)}
    return torch.cat([per_layer[n.rpartition(".")[0]][n.rpartition(".")[2]].flatten(1) for n in names], dim=1)


def iter_example_gradients(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, prefixes: list[str] | None = None, chunk_size: int = 128,
    method: str = "auto",
) -> Iterator[torch.Tensor]:
    """Yield (B, P) flattened per-example gradients of cross-entropy, chunk by chunk (B <= chunk_size).

    Row b is d CE(f_w(x_b), y_b) / dw over the selected parameters, concatenated in
    ``named_parameters`` order. `model` must be in eval mode (rows independent). `method`: "auto"
    or "kronecker" (hooks when the layers allow, else vmap), "hooks" or "vmap".
    """
    params = select_parameters(model, prefixes)
    method = "auto" if method == "kronecker" else method
    owners = _hookable_layers(model, params) if method != "vmap" else None
    if owners is not None and len(x) and _hooked_chunk(model, owners, list(params), x[:1], y[:1]) is not None:
        for begin in range(0, len(x), chunk_size):
            yield _hooked_chunk(model, owners, list(params), x[begin : begin + chunk_size], y[begin : begin + chunk_size])
        return
    if method == "hooks":
        raise ExemplarError("per-example gradients with hooks need Linear/Conv2d layers, each called once. Fix: use method='vmap'.")
    yield from _vmap_gradients(model, x, y, params, chunk_size)


def _vmap_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, params: dict[str, torch.Tensor], chunk_size: int) -> Iterator[torch.Tensor]:
    frozen = {name: p.detach() for name, p in model.named_parameters() if name not in params}
    frozen.update(dict(model.named_buffers()))
    per_example = vmap(grad(_example_loss_fn(model, frozen)), in_dims=(None, 0, 0))
    for begin in range(0, len(x), chunk_size):
        grads = per_example(params, x[begin : begin + chunk_size], y[begin : begin + chunk_size])
        yield torch.cat([g.flatten(1) for g in grads.values()], dim=1)


def example_gradient_norms(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, prefixes: list[str] | None = None, chunk_size: int = 128, method: str = "auto",
) -> np.ndarray:
    """GraNd (Paul et al., 2021): (N,) float64 ||d CE(f_w(x_n), y_n) / dw||_2 over the selected parameters."""
    if method == "kronecker":
        return np.sqrt(gradient_sketch(model, x, y, None, prefixes, chunk_size, False, method)[0])
    norms = [g.double().norm(dim=1) for g in iter_example_gradients(model, x, y, prefixes, chunk_size, method)]
    return torch.cat(norms).numpy() if norms else np.zeros(0)


class GaussianProjector:
    """A seeded Johnson-Lindenstrauss map R^P -> R^d: g -> g R with R_ij ~ N(0, 1/d).

    E[(gR).(g'R)] = g.g', and dot products are preserved within a factor (1 +- eps) with high
    probability once d >= O(log(N) / eps^2). The matrix is generated once per (P, d, seed) and kept
    (P x d float32), so the same seed always gives the same map.
    """

    def __init__(self, dim: int, seed: int):
        self.dim = dim
        self.seed = seed
        self._matrix: torch.Tensor | None = None

    def matrix(self, num_params: int) -> torch.Tensor:
        if self._matrix is None or self._matrix.shape[0] != num_params:
            generator = torch.Generator().manual_seed(self.seed)
            self._matrix = torch.randn(num_params, self.dim, generator=generator) / self.dim**0.5
        return self._matrix

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        """(B, P) -> (B, d)."""
        return grads @ self.matrix(grads.shape[1])


def projected_gradients(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, projector: GaussianProjector | None,
    prefixes: list[str] | None = None, chunk_size: int = 128,
) -> np.ndarray:
    """(N, d) float32 per-example gradients after `projector` ((N, P) exact when it is None)."""
    return gradient_sketch(model, x, y, projector, prefixes, chunk_size, keep=True)[1]


def gradient_sketch(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, projector: GaussianProjector | None,
    prefixes: list[str] | None = None, chunk_size: int = 128, keep: bool = True, method: str = "auto",
    exact_norms: bool = True, recorder: ModuleRecorder | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One sweep of per-example gradients g (N, P), giving the exact (N,) float64 ||g||^2 and, when
    `keep`, the (N, d) float32 projection of g (g itself when `projector` is None).

    `method="kronecker"`: the projection is the Kronecker-factored one of
    :mod:`exemplar.scoring.projection` with ``projector.dim`` and ``projector.seed`` where the layers
    allow; otherwise, and for the other methods, g R with the dense `projector`. With
    ``exact_norms=False`` (kronecker, with a projector) the norms are those of the projections,
    ||P g||^2, and no per-example gradient of parameter size is ever formed (on the fallback path
    they stay exact). `recorder` receives its module's (input, output) of the factored path's forward
    passes (it stays empty on the other paths).
    """
    if method == "kronecker" and not (keep and projector is None):
        factored = _factored(model, x, y, projector, prefixes, chunk_size, keep, exact_norms or projector is None, recorder)
        if factored is not None:
            return factored
    norms, parts = [], []
    for grads in iter_example_gradients(model, x, y, prefixes, chunk_size, method):
        norms.append((grads.double() ** 2).sum(dim=1))
        if keep:
            parts.append(grads if projector is None else projector(grads))
    squared = torch.cat(norms).numpy() if norms else np.zeros(0)
    return squared, (torch.cat(parts).numpy() if parts else None)


def _factored(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, projector: GaussianProjector | None,
    prefixes: list[str] | None, chunk_size: int, keep: bool, exact_norms: bool, recorder: ModuleRecorder | None = None,
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """:func:`gradient_sketch` through the Kronecker-factored projection; None when the layers do not allow it."""
    params = select_parameters(model, prefixes)
    owners = _hookable_layers(model, params)
    if owners is None:
        return None
    dim, seed = (projector.dim, projector.seed) if projector is not None else (1, 0)
    layers = build_projections(owners, list(params), dim, seed)
    if not runs_each_layer_once(model, layers, x, y):
        return None
    return factored_sketch(model, layers, x, y, chunk_size, keep, exact_norms, recorder)
