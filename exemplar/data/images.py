"""Decoding and encoding of image bytes with Pillow (no torchvision)."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageDecodeError(ValueError):
    """Raised for bytes Pillow cannot turn into a non-empty image.

    ``reason`` is the quarantine reason: "zero_size_image" for empty bytes or a 0-pixel side,
    "undecodable_image" otherwise.
    """

    def __init__(self, message: str, reason: str = "undecodable_image"):
        super().__init__(message)
        self.reason = reason


def decode_image(data: bytes) -> Image.Image:
    """Decode PNG/JPEG/BMP/GIF/WebP bytes into a fully loaded Pillow image.

    Raises ImageDecodeError for empty, truncated or unrecognised bytes.
    """
    image = _open(data)
    try:
        image.load()
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"cannot decode image: {error}") from error
    return image


def probe_image(data: bytes, max_pixels: int | None = None) -> tuple[int, int, bool]:
    """(height, width, is_grayscale) from the image header only (no pixel decoding).

    Raises ImageDecodeError when the header is missing or unreadable, or (reason "image_too_large")
    when height * width exceeds `max_pixels`; truncated pixel data is only found by :func:`decode_image`.
    """
    image = _open(data)
    if max_pixels is not None and image.height * image.width > max_pixels:
        raise ImageDecodeError(
            f"{image.width}x{image.height} = {image.width * image.height:,} pixels exceeds data.max_image_pixels={max_pixels:,} "
            "(checked from the header, never decoded)", "image_too_large",
        )
    return image.height, image.width, is_grayscale(image)


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ImageDecodeError("empty file (0 bytes)", "zero_size_image")
    try:
        with warnings.catch_warnings():  # the size is judged by data.max_image_pixels, not Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(f"image too large for Pillow to open safely ({error})", "image_too_large") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"not a PNG/JPEG/BMP/GIF/WebP image ({error.__class__.__name__})") from error
    if image.width == 0 or image.height == 0:
        raise ImageDecodeError(f"zero-size image ({image.width}x{image.height})", "zero_size_image")
    return image


def array_to_image(pixels: np.ndarray) -> Image.Image:
    """A (C, H, W) uint8 array (C in {1, 3, 4}) as a Pillow image."""
    channels = pixels.shape[0]
    if channels == 1:
        return Image.fromarray(np.ascontiguousarray(pixels[0]), mode="L")
    return Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), mode="RGB" if channels == 3 else "RGBA")


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
    height, width = pixels.shape[1:]
    image = array_to_image(pixels)
    if scale > 1:
        image = image.resize((width * scale, height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
