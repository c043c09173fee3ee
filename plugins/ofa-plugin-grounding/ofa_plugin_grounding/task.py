"""Record <-> text for grounding: the box becomes four bin tokens, generated tokens become a box."""

from __future__ import annotations

from ofa_core.boxes import box_to_text, text_to_box
from ofa_core.image_processing import load_image


def preprocess(record: dict, split: str, options: None) -> dict:
    """Load the image once, keep its size, and write the target `region` as `<bin_*>` tokens."""
    image = load_image(record["image"])
    record = {**record, "image": image, "image_size": image.size}
    if "box" in record:
        record["region"] = box_to_text(record["box"], image.size)
    return record


def postprocess(text: str, record: dict, options: None) -> str:
    """The generated box in pixels of the original image, 'x0 y0 x1 y1'; '' when the text is no box."""
    box = text_to_box(text, record["image_size"])
    return "" if box is None else " ".join(f"{v:.2f}" for v in box)
