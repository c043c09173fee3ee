"""Record <-> text for grounding: the box becomes four bin tokens, generated tokens become a box."""

from __future__ import annotations

import io

from PIL import Image

from ofa_core.plugin import box_to_text, text_to_box


def image_size(image) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    if isinstance(image, Image.Image):
        return image.size
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as opened:
        return opened.size


def preprocess(record: dict, split: str, options: None) -> dict:
    """Keep the image size (boxes are quantised relative to it) and write the target `region` as `<bin_*>` tokens."""
    size = image_size(record["image"])
    record = {**record, "image_size": size}
    if "box" in record:
        record["region"] = box_to_text(record["box"], size)
    return record


def postprocess(text: str, record: dict, options: None) -> str:
    """The generated box in pixels of the original image, 'x0 y0 x1 y1'; '' when the text is no box."""
    box = text_to_box(text, record["image_size"])
    return "" if box is None else " ".join(f"{v:.2f}" for v in box)
