"""The fused pass: one forward pass with input gradients per checkpoint gives everything the
checkpoint-based scores need -- logits (loss, margin, EL2N, predictions), the penultimate embedding
(last-layer TracIn, outlier distances) and the input-gradient map S_t of VoG.

Last-layer TracIn needs no backward pass at all: its gradient is (softmax - onehot) outer
[embedding, 1] (see :mod:`exemplar.scoring.tracin`), so the only backward is VoG's, with respect to the
input (parameter gradients are never computed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class PassOutputs:
    logits: np.ndarray  # (N, K) float32
    embeddings: np.ndarray  # (N, D) float32, the input of the final linear layer
    input_maps: np.ndarray | None  # (N, P) float32 VoG maps S_t (None when not requested)


def input_map(model: torch.nn.Module, input_grad: torch.Tensor) -> torch.Tensor:
    """(B, P) VoG map from a (B, ...) input gradient.

    Images (B, C, H, W): mean over channels -> (B, H*W). Tables (B, F): the gradient with respect to the
    standardized features, i.e. d/dx * std (the model standardizes internally) -> (B, F).
    """
    if input_grad.dim() == 4:
        return input_grad.mean(dim=1).flatten(1)
    std = getattr(model, "std", None)
    return (input_grad * std if std is not None else input_grad).flatten(1)


def _batch_pass(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor | None) -> tuple:
    if targets is None:
        with torch.no_grad():
            embedding = model.embed(x)
            return model.head(embedding), embedding, None
    x = x.detach().requires_grad_(True)
    embedding = model.embed(x)
    logits = model.head(embedding)
    (input_grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), x)
    return logits.detach(), embedding.detach(), input_map(model, input_grad)


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (rows independent) and no parameter gradients: what every scoring pass assumes."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def fused_pass(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor | None, batch_size: int = 256) -> PassOutputs:
    """Run `model` (eval mode, with ``embed`` and ``head``) over (N, ...) inputs in batches.

    With (N,) int64 `targets`, also returns VoG's map: d logit_{target} / d input per example. Rows
    are independent (eval mode), so the result does not depend on `batch_size`.
    """
    freeze(model)
    logits, embeddings, maps = [], [], []
    for begin in range(0, len(x), batch_size):
        chunk = targets[begin : begin + batch_size] if targets is not None else None
        out = _batch_pass(model, x[begin : begin + batch_size], chunk)
        logits.append(out[0])
        embeddings.append(out[1])
        maps.append(out[2])
    joined = torch.cat(maps).numpy() if targets is not None else None
    return PassOutputs(torch.cat(logits).numpy(), torch.cat(embeddings).numpy(), joined)
