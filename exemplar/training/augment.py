"""Image augmentation on tensors with an explicit generator (so resumed runs replay it exactly).

Random draws always come from the CPU generator and are then moved to the images' device, so the
same seed gives the same augmentation on CPU and GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad (B, C, H, W) by `padding` and crop back to (H, W) at a random offset per image."""
    if padding <= 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(x.device)
    rows = dy[:, None] + torch.arange(height, device=x.device)[None]  # (B, H)
    cols = dx[:, None] + torch.arange(width, device=x.device)[None]  # (B, W)
    index = torch.arange(batch, device=x.device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return cropped.permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each (C, H, W) image left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)
