"""Kronecker-factored random projection of per-example gradients from one batched forward + backward.

LoGra (Choe et al. 2024, "What is your data worth to GPT? LLM-scale data valuation with influence
functions"): for a layer y = W a (+ b), the per-example weight gradient is a sum of outer products
over positions p (one position for an ``nn.Linear`` on (B, F) inputs, H'W' for an ``nn.Conv2d`` on
unfolded patches):

    G_i = sum_p delta_ip a_ip^T           delta = dL/dy (C_out),  a = layer input (fan_in)

With P = P_out (x) P_in (P_out: k_out x C_out, P_in: k_in x fan_in) and row-major vec,

    P vec(G_i) = vec(P_out G_i P_in^T) = vec( sum_p (P_out delta_ip)(P_in a_ip)^T )

so each side is projected first and only a (k_out x k_in) matrix per example is formed. For a
Conv2d, P_in applied to every unfolded patch is itself a convolution with ``k_in`` output channels
whose kernel is P_in reshaped to (k_in, C_in, kh, kw), so the unfolded input is never built for the
projection. The bias gradient sum_p delta_ip is projected by P_out.

a is captured by forward hooks and delta by ``autograd.grad`` to the layer outputs, in ONE batched
forward + backward of the SUM of the per-example losses: in eval mode example i's output gradient
depends only on example i, so this is exact. Entries of P_in, P_out are N(0, 1/k), seeded, hence
E[P^T P] = E[P_out^T P_out] (x) E[P_in^T P_in] = I and E[(Pg).(Pg')] = g.g' (Johnson-Lindenstrauss).

The exact squared norms ||g_i||^2 (self-influence, GraNd) come from the same pass, per layer:
||delta_i||^2 ||a_i||^2 for a single position; for a Conv2d, ||G_i||_F^2 with G_i from one grouped
weight-gradient convolution (G_i then exists for this layer and chunk only, and P_out G_i P_in^T is
applied to it directly: the same projection, cheaper than projecting every position). With
``exact_norms=False`` the norms are ||P g_i||^2 and nothing of parameter size per example is formed.

A :class:`ModuleRecorder` keeps one module's input and output from the same forward (a classifier's
head: the embedding and the logits), so a caller needs no separate forward pass for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LayerProjection:
    """The projection of one layer's selected parameters (None = the identity on that side)."""

    module: nn.Module
    weight: bool  # the layer's weight is among the selected parameters
    bias: bool  # the layer's bias is among the selected parameters
    p_out: torch.Tensor | None  # (k_out, C_out)
    p_in: torch.Tensor | None  # (k_in, fan_in); fan_in = C_in * kh * kw for a Conv2d

    @property
    def dim(self) -> int:
        k_out = self.p_out.shape[0] if self.p_out is not None else _out_features(self.module)
        k_in = self.p_in.shape[0] if self.p_in is not None else _fan_in(self.module)
        return k_out * k_in * self.weight + k_out * self.bias


def _out_features(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _fan_in(module: nn.Module) -> int:
    return module.in_features if isinstance(module, nn.Linear) else module.weight[0].numel()


def side_dim(total: int, layers: int) -> int:
    """k per side so that `layers` layers of k x k blocks use about `total` dimensions."""
    return max(1, math.isqrt(max(total // max(layers, 1), 1)))


def _gaussian(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor | None:
    """(rows, cols) N(0, 1/rows) matrix; None (the identity, exact) when rows >= cols."""
    return None if rows >= cols else torch.randn(rows, cols, generator=generator) / rows**0.5


def build_projections(owners: dict[str, nn.Module], names: list[str], dim: int, seed: int) -> list[LayerProjection]:
    """Seeded per-layer projections for the selected parameter `names` of the `owners` layers.

    Every layer gets k_in = k_out = ``side_dim(dim, layers)`` (capped: a side no larger than k is
    kept exact), so the total dimension is about `dim`; the same seed and model give the same maps.
    """
    generator, side = torch.Generator().manual_seed(seed), side_dim(dim, len(owners))
    chosen = set(names)
    layers = []
    for key, module in owners.items():
        p_out = _gaussian(side, _out_features(module), generator)
        p_in = _gaussian(side, _fan_in(module), generator)
        layers.append(LayerProjection(module, f"{key}.weight" in chosen, f"{key}.bias" in chosen, p_out, p_in))
    return layers


def _apply(matrix: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """(B, C, L) -> (B, k, L) by `matrix` (k, C) on the channel axis (identity when None)."""
    return x if matrix is None else torch.matmul(matrix, x)


def _columns(module: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    """(B, C, L): a Linear's (B, ..., C) or a Conv2d's (B, C, H', W') tensor, one column per position."""
    if isinstance(module, nn.Linear):
        return tensor.reshape(tensor.shape[0], -1, tensor.shape[-1]).transpose(1, 2)
    return tensor.flatten(2)


def _projected_inputs(layer: LayerProjection, inputs: torch.Tensor) -> torch.Tensor:
    """(B, k_in, L) = P_in a_p for every position p; a convolution with kernel P_in for a Conv2d."""
    module = layer.module
    if isinstance(module, nn.Linear):
        return _apply(layer.p_in, _columns(module, inputs))
    if layer.p_in is None:
        return F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)
    kernel = layer.p_in.reshape(-1, *module.weight.shape[1:])
    return F.conv2d(inputs, kernel, None, module.stride, module.padding, module.dilation).flatten(2)


def _bias_part(layer: LayerProjection, deltas: torch.Tensor) -> torch.Tensor:
    """(B, k_out) P_out sum_p delta_ip from (B, C_out, L) output gradients."""
    return _apply(layer.p_out, deltas.sum(dim=2, keepdim=True))[:, :, 0]


def project_layer(layer: LayerProjection, inputs: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """(B, dim) [vec(P_out G_i P_in^T), P_out sum_p delta_ip] of one layer (row-major, weight first),
    projecting each side per position first: G_i is never formed."""
    deltas = _apply(layer.p_out, _columns(layer.module, grad_out))  # (B, k_out, L)
    parts = []
    if layer.weight:
        parts.append(torch.bmm(deltas, _projected_inputs(layer, inputs).transpose(1, 2)).flatten(1))
    if layer.bias:
        parts.append(deltas.sum(dim=2))
    return torch.cat(parts, dim=1)


def _conv_example_weight_grads(module: nn.Conv2d, inputs: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """(B, C_out, fan_in) per-example weight gradients G_i = D_i unfold(A_i)^T of a Conv2d.

    Computed as ONE convolution weight-gradient with the batch folded into groups (B groups of
    C_in -> C_out): on CPU about 2x faster than unfold + bmm, and the unfold is never built.
    """
    batch = inputs.shape[0]
    folded_in = inputs.reshape(1, -1, *inputs.shape[2:])
    folded_out = grad_out.reshape(1, -1, *grad_out.shape[2:])
    weight = module.weight.detach().repeat(batch, 1, 1, 1)
    _, grads, _ = torch.ops.aten.convolution_backward(
        folded_out, folded_in, weight, None, list(module.stride), list(module.padding), list(module.dilation),
        False, [0, 0], batch, [False, True, False],
    )
    return grads.reshape(batch, module.out_channels, -1)


def _squared(t: torch.Tensor) -> torch.Tensor:
    """(B,) float64 sum of squares over all but the first axis."""
    return (t.double() ** 2).flatten(1).sum(dim=1)


def _exact_conv_layer(layer: LayerProjection, inputs: torch.Tensor, grad_out: torch.Tensor, project: bool) -> tuple:
    """A Conv2d's exact ||g_i||^2 needs its per-example G_i (B x layer parameters, this chunk only);
    once it exists, P_out G_i P_in^T is far cheaper than projecting every position."""
    deltas = grad_out.flatten(2)
    grads = _conv_example_weight_grads(layer.module, inputs, grad_out)
    norms = _squared(grads) + (_squared(deltas.sum(dim=2)) if layer.bias else 0.0)
    if not project:
        return norms, None
    weight = _apply(layer.p_out, grads)
    weight = weight if layer.p_in is None else torch.matmul(weight, layer.p_in.T)
    parts = [weight.flatten(1)] + ([_bias_part(layer, deltas)] if layer.bias else [])
    return norms, torch.cat(parts, dim=1)


def _exact_norms(layer: LayerProjection, inputs: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """(B,) float64 exact ||g_i||^2 of a Linear's selected parameters."""
    a, d = _columns(layer.module, inputs), _columns(layer.module, grad_out)  # (B, fan_in, L), (B, C_out, L)
    total = _squared(d.sum(dim=2)) if layer.bias else torch.zeros(len(d), dtype=torch.float64)
    if layer.weight and d.shape[2] == 1:  # one position: ||delta a^T||^2 = ||delta||^2 ||a||^2
        return total + _squared(d) * _squared(a)
    return total + (_squared(torch.bmm(d, a.transpose(1, 2))) if layer.weight else 0.0)


def layer_sketch(layer: LayerProjection, inputs: torch.Tensor, grad_out: torch.Tensor, exact_norms: bool, project: bool) -> tuple:
    """((B,) float64 exact ||g_i||^2 or None, (B, dim) projection or None) of one layer."""
    if exact_norms and layer.weight and isinstance(layer.module, nn.Conv2d):
        return _exact_conv_layer(layer, inputs, grad_out, project)
    norms = _exact_norms(layer, inputs, grad_out) if exact_norms else None
    return norms, (project_layer(layer, inputs, grad_out) if project else None)


@dataclass
class ModuleRecorder:
    """(input, output) of `module` for every row of a factored pass, chunk by chunk (e.g. a
    classifier's ``head``: the (N, D) embedding and the (N, K) logits)."""

    module: nn.Module
    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)
    complete: bool = True  # False once the module ran other than once in a chunk

    def add(self, calls: list) -> None:
        self.complete = self.complete and len(calls) == 1
        if self.complete:
            self.inputs.append(calls[0][0])
            self.outputs.append(calls[0][1].detach())

    def joined(self, rows: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(N, D) float32 inputs and (N, K) outputs, or None unless all `rows` rows were recorded."""
        if not self.complete or sum(len(i) for i in self.inputs) != rows or not rows:
            return None
        return torch.cat(self.inputs).numpy(), torch.cat(self.outputs).numpy()


def layer_io(model: nn.Module, modules: list[nn.Module], x: torch.Tensor, y: torch.Tensor) -> tuple[list[list], torch.Tensor]:
    """One forward of ``sum_i CE_i`` over (B, ...) inputs, recording every call of each module.

    Returns, per module, the list of its (detached input, output) calls, and the summed loss; the
    outputs stay in the graph so ``autograd.grad(loss, outputs)`` gives per-example output gradients.
    """
    calls: list[list] = [[] for _ in modules]
    handles = [module.register_forward_hook(lambda _, i, o, seen=seen: seen.append((i[0].detach(), o)))
               for module, seen in zip(modules, calls)]
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(x.detach().requires_grad_(True)), y, reduction="sum")
    finally:
        for handle in handles:
            handle.remove()
    return calls, loss


def _capture(
    model: nn.Module, layers: list[LayerProjection], x: torch.Tensor, y: torch.Tensor, recorder: ModuleRecorder | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """(input, dL/d output) of every layer from one forward + backward of sum_i CE_i; None if a layer ran twice.
    `recorder` receives its module's (input, output) of this forward."""
    watched = [layer.module for layer in layers] + ([recorder.module] if recorder is not None else [])
    seen, loss = layer_io(model, watched, x, y)
    if recorder is not None:
        recorder.add(seen.pop())
    if any(len(calls) != 1 for calls in seen):
        return None
    grads = torch.autograd.grad(loss, [calls[0][1] for calls in seen])
    return [(calls[0][0], g) for calls, g in zip(seen, grads)]


def runs_each_layer_once(model: nn.Module, layers: list[LayerProjection], x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether the factored method applies: every layer is called exactly once per forward."""
    return len(x) == 0 or _capture(model, layers, x[:1], y[:1]) is not None


def iter_factored(
    model: nn.Module, layers: list[LayerProjection], x: torch.Tensor, y: torch.Tensor, chunk_size: int,
    project: bool = True, exact_norms: bool = True, recorder: ModuleRecorder | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield per chunk ((B,) float64 ||g_i||^2, (B, d) float32 projections or None).

    The norms are exact with `exact_norms`, else those of the projections (||P g_i||^2, unbiased).
    `recorder` receives its module's (input, output) of every chunk's forward.
    """
    for begin in range(0, len(x), chunk_size):
        captured = _capture(model, layers, x[begin : begin + chunk_size], y[begin : begin + chunk_size], recorder)
        pieces = [layer_sketch(layer, a, g, exact_norms, project or not exact_norms) for layer, (a, g) in zip(layers, captured)]
        sketch = torch.cat([p for _, p in pieces], dim=1) if project or not exact_norms else None
        norms = sum(n for n, _ in pieces) if exact_norms else _squared(sketch)
        yield norms, (sketch if project else None)


def factored_sketch(
    model: nn.Module, layers: list[LayerProjection], x: torch.Tensor, y: torch.Tensor, chunk_size: int, keep: bool,
    exact_norms: bool = True, recorder: ModuleRecorder | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(N,) float64 ||g||^2 (exact, or of the projections) and, when `keep`, the (N, d) float32 projections."""
    norms, parts = [], []
    for squared, sketch in iter_factored(model, layers, x, y, chunk_size, keep, exact_norms, recorder):
        norms.append(squared)
        if keep:
            parts.append(sketch)
    squared = torch.cat(norms).numpy() if norms else np.zeros(0)
    return squared, (torch.cat(parts).numpy() if parts else None)
