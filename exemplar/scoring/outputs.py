"""One batched forward pass per checkpoint: logits and penultimate embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ModelOutputs:
    logits: np.ndarray  # (N, K) float32
    embeddings: np.ndarray  # (N, D) float32, the input to the final linear layer


@torch.no_grad()
def forward_outputs(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> ModelOutputs:
    """Run `model` (with ``embed`` and ``head``) in eval mode over (N, ...) inputs in chunks."""
    model.eval()
    logits, embeddings = [], []
    for begin in range(0, len(x), batch_size):
        embedding = model.embed(x[begin : begin + batch_size])
        embeddings.append(embedding)
        logits.append(model.head(embedding))
    return ModelOutputs(torch.cat(logits).numpy(), torch.cat(embeddings).numpy())
