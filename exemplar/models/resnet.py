"""ResNet-18, CIFAR variant (He et al. 2016, "Deep Residual Learning for Image Recognition").

The CIFAR variant replaces the ImageNet stem (7x7 stride-2 convolution and max-pool) by one 3x3
stride-1 convolution, so 32x32 inputs keep their resolution until the first downsampling stage.
Four stages of two basic blocks each, widths (w, 2w, 4w, 8w) with w = 64 by default.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """x -> conv3x3-BN-ReLU-conv3x3-BN, plus the (projected when the shape changes) input, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """Input (B, C, H, W); ``embed`` returns the pooled (B, 8w) features; ``forward`` returns (B, K) logits.

    Any input size of at least 8x8 works (global average pooling); it is designed for 32x32 RGB.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(  # (B, w, H, W)
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, channels = [], width
        for index, out_channels in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if index == 0 else 2  # H/1, H/2, H/4, H/8
            stages += [BasicBlock(channels, out_channels, stride), BasicBlock(out_channels, out_channels)]
            channels = out_channels
        self.stages = nn.Sequential(*stages)  # (B, 8w, H/8, W/8)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 8w)
        self.head = nn.Linear(channels, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
