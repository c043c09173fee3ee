"""Boxes <-> OFA location tokens, with fairseq's visual-grounding quantisation (float32, half-to-even, as fairseq).

fairseq (RefCOCO) resizes the image to `patch_image_size` squared, scales the box by the
same ratios, divides by `max_image_size` and emits `<bin_{round(v * (num_bins - 1))}>` for
x0, y0, x1, y1. Decoding inverts it: `bin / (num_bins - 1) * max_image_size`, then undoes
the resize ratios. Both sizes are 512 in the official grounding scripts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]

_BIN_RE = re.compile(r"<bin_(\d+)>")


def bin_token(index: int) -> str:
    """Token string of location bin `index`."""
    return f"<bin_{index}>"


def box_to_bins(
    box: Sequence[float],
    image_size: tuple[int, int],
    patch_image_size: int = 512,
    max_image_size: int = 512,
    num_bins: int = 1000,
) -> tuple[int, int, int, int]:
    """Bin indices of a pixel box (x0, y0, x1, y1) on an image of `image_size` = (width, height).

    Computed in float32 with half-to-even rounding like fairseq, so ties land on the same bin;
    indices are clamped to 0..num_bins-1 so a box spilling past the border still names valid tokens.
    """
    width, height = _checked_size(image_size)
    ratio_w, ratio_h = patch_image_size / width, patch_image_size / height
    scaled = np.asarray(_four(box), dtype=np.float32) * np.asarray(
        [ratio_w, ratio_h, ratio_w, ratio_h], dtype=np.float32
    )
    bins = np.clip(np.round(scaled / np.float32(max_image_size) * np.float32(num_bins - 1)), 0, num_bins - 1)
    return tuple(int(b) for b in bins.tolist())


def bins_to_box(
    bins: Sequence[int],
    image_size: tuple[int, int],
    patch_image_size: int = 512,
    max_image_size: int = 512,
    num_bins: int = 1000,
) -> Box:
    """Pixel box (x0, y0, x1, y1) on the original image from four bin indices."""
    width, height = _checked_size(image_size)
    x0, y0, x1, y1 = (b / (num_bins - 1) * max_image_size for b in _four(bins))
    ratio_w, ratio_h = patch_image_size / width, patch_image_size / height
    return (x0 / ratio_w, y0 / ratio_h, x1 / ratio_w, y1 / ratio_h)


def bins_to_text(bins: Sequence[int]) -> str:
    """`"<bin_a> <bin_b> <bin_c> <bin_d>"`, the target string of a grounding sample."""
    return " ".join(bin_token(int(b)) for b in bins)


def text_to_bins(text: str) -> list[int]:
    """Bin indices of every `<bin_i>` token in decoded text, in order."""
    return [int(index) for index in _BIN_RE.findall(text)]


def ids_to_bins(ids: Sequence[int], bin_start_id: int, num_bins: int = 1000) -> list[int]:
    """Bin indices of the location-token ids in `ids` (other ids are skipped)."""
    return [int(i) - bin_start_id for i in ids if bin_start_id <= int(i) < bin_start_id + num_bins]


def box_to_text(box: Sequence[float], image_size: tuple[int, int], **quantisation) -> str:
    """Grounding target string of a pixel box (keyword arguments as in `box_to_bins`)."""
    return bins_to_text(box_to_bins(box, image_size, **quantisation))


def text_to_box(text: str, image_size: tuple[int, int], **quantisation) -> Box | None:
    """Pixel box from the first four `<bin_i>` tokens of generated text; None when fewer are present."""
    bins = text_to_bins(text)
    return bins_to_box(bins[:4], image_size, **quantisation) if len(bins) >= 4 else None


def _checked_size(image_size: tuple[int, int]) -> tuple[int, int]:
    width, height = image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"image_size {image_size!r} must be a positive (width, height)")
    return width, height


def _four(values: Sequence[float]) -> tuple:
    if len(values) != 4:
        raise ValueError(f"a box needs 4 values (x0, y0, x1, y1), got {len(values)}")
    return tuple(values)
