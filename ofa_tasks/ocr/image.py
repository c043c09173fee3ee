"""OFA-OCR's image geometry: keep the aspect ratio, then pad to a square by repeating the edge pixels.

The core's image processor squashes every image to a square; text lines would become unreadable
smears. So the task builds the square itself (see `ocr.plugin.preprocess`) and the processor's
resize of a square of its own size changes nothing.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image

MIN_SIDE = 64
"""The official resize never makes a side shorter than this."""


def resized_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) after the official resize: the long side becomes `side`, the short one max(64, int(side *
    short / long))."""
    if width >= height:
        return max(MIN_SIDE, side), max(MIN_SIDE, int(side * (height / width)))
    return max(MIN_SIDE, int(side * (width / height))), max(MIN_SIDE, side)


def pad_offset(short: int, side: int, rng: random.Random | None) -> int:
    """Pixels of padding before the image along its short axis: uniform in [0, side - short] with `rng`
    (the official training draw), else the centre rounded down (our fixed evaluation rule)."""
    return rng.randint(0, side - short) if rng is not None else (side - short) // 2


def square(image: Image.Image, side: int, rng: random.Random | None = None) -> Image.Image:
    """`image` resized (bicubic, aspect kept) and edge-padded to `side` x `side`; a landscape (or square) image
    is padded above and below, a portrait one left and right."""
    image = image.convert("RGB")
    width, height = resized_size(*image.size, side)
    resized = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))
    if width >= height:
        top = pad_offset(height, side, rng)
        padding = ((top, side - height - top), (0, 0), (0, 0))
    else:
        left = pad_offset(width, side, rng)
        padding = ((0, 0), (left, side - width - left), (0, 0))
    return Image.fromarray(np.pad(resized, padding, mode="edge"))


def open_image(value) -> Image.Image:
    """A PIL image from what a record may hold: a PIL image, a path, encoded bytes or an HxW(xC) uint8 array."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, np.ndarray):
        return Image.fromarray(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        opened = Image.open(io.BytesIO(bytes(value)))
    elif isinstance(value, (str, Path)):
        opened = Image.open(value)
    else:
        raise TypeError(f"an image of type {type(value).__name__}; give a path, bytes, a PIL image or an array")
    opened.load()
    return opened
