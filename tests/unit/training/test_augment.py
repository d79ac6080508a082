"""Augmentation: hand-checkable crops and flips, reproducible from the generator."""

from __future__ import annotations

import torch

from exemplar.training.augment import random_crop, random_hflip


def _images(batch: int = 6) -> torch.Tensor:
    return torch.arange(batch * 2 * 5 * 5, dtype=torch.float32).reshape(batch, 2, 5, 5)


def test_zero_padding_is_the_identity():
    x = _images()
    assert torch.equal(random_crop(x, 0, torch.Generator().manual_seed(0)), x)


def test_every_crop_is_a_shifted_window_of_the_zero_padded_image():
    x, padding = _images(), 2
    cropped = random_crop(x, padding, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    assert cropped.shape == x.shape
    for image, out in zip(padded, cropped, strict=True):
        windows = [image[:, r : r + 5, c : c + 5] for r in range(2 * padding + 1) for c in range(2 * padding + 1)]
        assert any(torch.equal(out, window) for window in windows)


def test_flip_mirrors_some_images_and_keeps_the_rest():
    x = _images(32)
    flipped = random_hflip(x, torch.Generator().manual_seed(0))
    is_mirrored = [torch.equal(f, i.flip(-1)) for f, i in zip(flipped, x, strict=True)]
    is_kept = [torch.equal(f, i) for f, i in zip(flipped, x, strict=True)]
    assert all(m or k for m, k in zip(is_mirrored, is_kept, strict=True))
    assert 0 < sum(is_mirrored) < 32


def test_same_generator_state_gives_the_same_augmentation():
    x = _images()
    first = random_hflip(random_crop(x, 1, torch.Generator().manual_seed(4)), torch.Generator().manual_seed(5))
    second = random_hflip(random_crop(x, 1, torch.Generator().manual_seed(4)), torch.Generator().manual_seed(5))
    assert torch.equal(first, second)
