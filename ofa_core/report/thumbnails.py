"""Small JPEG thumbnails as data URIs, so a report carries its images and opens from disk with no network."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import attrs
from PIL import Image, UnidentifiedImageError

from ofa_core.plugin import decode_image

SIZE = 224
"""The longest side of a thumbnail in pixels: enough to judge a caption or a box, ~6 kB as JPEG."""
QUALITY = 80


@attrs.frozen
class Thumbnail:
    """A data URI and the original image's size (boxes are in original pixels and drawn in that frame)."""

    uri: str
    width: int
    height: int


def _open(image: Any) -> Image.Image:
    """A record's image (a PIL image, a path, bytes or base64 text, as readers yield them) opened lazily."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(image)))
    if isinstance(image, Path) or (isinstance(image, str) and len(image) < 1024 and Path(image).is_file()):
        return Image.open(image)
    if isinstance(image, str):
        return Image.open(io.BytesIO(decode_image(image)))
    raise ValueError(f"unsupported image value of type {type(image).__name__}")


def thumbnail(image: Any) -> Thumbnail | None:
    """The image shrunk to `SIZE` (JPEG's draft mode decodes large photos at a fraction of their size);
    None when the record has no image or it cannot be decoded (the card then says so)."""
    if image is None:
        return None
    try:
        pil = _open(image)
        width, height = pil.size
        if pil.format == "JPEG":
            pil.draft("RGB", (SIZE, SIZE))
        small = pil.convert("RGB")
        small.thumbnail((SIZE, SIZE), Image.Resampling.BILINEAR)
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError):
        return None
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=QUALITY, optimize=False)
    return Thumbnail("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), width, height)
