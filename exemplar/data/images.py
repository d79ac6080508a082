"""Decoding and encoding of image bytes with Pillow (no torchvision)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageDecodeError(ValueError):
    """Raised for bytes Pillow cannot turn into a non-empty image."""


def decode_image(data: bytes) -> Image.Image:
    """Decode PNG/JPEG/BMP/GIF/WebP bytes into a fully loaded Pillow image.

    Raises ImageDecodeError for empty, truncated or unrecognised bytes.
    """
    if not data:
        raise ImageDecodeError("empty image bytes")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"cannot decode image: {error}") from error
    if image.width == 0 or image.height == 0:
        raise ImageDecodeError("zero-size image")
    return image


def to_array(image: Image.Image, channels: int, size: tuple[int, int]) -> np.ndarray:
    """Convert an image to a uint8 array of shape (C, H, W) with C in {1, 3}.

    `size` is (height, width); images of another size are resized bilinearly.
    """
    mode = "L" if channels == 1 else "RGB"
    image = image.convert(mode)
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def is_grayscale(image: Image.Image) -> bool:
    """True for single-band images (L, 1, I, F modes, and palettes of grays are treated as colour)."""
    return image.mode in ("L", "1", "I", "I;16", "F", "LA")


def png_data_uri(pixels: np.ndarray, scale: int = 1) -> str:
    """Encode a (C, H, W) uint8 array as an inline ``data:image/png;base64`` URI.

    `scale` enlarges tiny images (nearest neighbour) so 8x8 digits stay legible.
    """
    channels, height, width = pixels.shape
    array = pixels[0] if channels == 1 else pixels.transpose(1, 2, 0)
    image = Image.fromarray(np.ascontiguousarray(array), mode="L" if channels == 1 else "RGB")
    if scale > 1:
        image = image.resize((width * scale, height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
