"""Grounding readers: the official RefCOCO TSVs (column order as `--selected-cols`) and JSON lines.

Records carry the original image's `width` and `height`: the box is quantised relative to them,
and predicted boxes are mapped back to them. In the official TSVs every expression repeats its
image; identical image columns are decoded and kept once.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator, Sequence

import attrs
from PIL import Image

from ofa_core import plugin

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""

OFFICIAL_COLUMNS = (0, 4, 2, 3)
"""uniq-id, image, expression, box: `selected_cols` of the official RefCOCO/+/g scripts (RefCOCO-CN: 0,3,1,2)."""


def image_size(image) -> tuple[int, int]:
    """(width, height) of a path, encoded bytes, PIL image or HxW(xC) array; files and bytes by their header only."""
    if isinstance(image, Image.Image):
        return image.size
    if hasattr(image, "shape"):
        return int(image.shape[1]), int(image.shape[0])
    with Image.open(io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else image) as opened:
        return opened.size


def parse_box(values: Sequence) -> list[float]:
    """Four finite numbers x0, y0, x1, y1 (pixels of the original image), else ValueError."""
    if isinstance(values, (str, bytes)) or len(values) != 4:
        raise ValueError(f"a box is 4 numbers x0, y0, x1, y1, got {values!r}")
    box = [float(value) for value in values]
    if not all(math.isfinite(value) for value in box):
        raise ValueError(f"box {values!r} has a value that is not a finite number")
    return box


def _record(record_id: str, image, size: tuple[int, int], text: str, box: list[float] | None) -> dict:
    record = {
        "id": record_id,
        "image": image,
        "width": size[0],
        "height": size[1],
        "text": text,
        "references": [tuple(box)] if box is not None else [],
    }
    return record if box is None else {**record, "box": box}


@attrs.frozen
class GroundingTsvOptions(plugin.PerSplitFiles):
    """The official RefCOCO/+/g or RefCOCO-CN TSV per split; `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = plugin.columns_option("uniq-id, image, expression and box", 4, default=OFFICIAL_COLUMNS)
    """Where uniq-id, image (base64), expression and box (`x0,y0,x1,y1`) are: [0, 4, 2, 3] for RefCOCO/+/g, [0, 3,
    1, 2] for RefCOCO-CN."""


@READERS.add(
    "grounding_tsv", "official OFA RefCOCO TSV (uniq-id, image, text, box x0,y0,x1,y1; columns chosen as selected_cols)"
)
def read_grounding_tsv(options: GroundingTsvOptions, split: str) -> Iterator[dict]:
    id_column, image_column, text_column, box_column = options.columns
    images: dict[bytes, tuple[bytes, tuple[int, int]]] = {}

    def record(row: plugin.SplitRow) -> dict:
        fields = row.values
        try:
            box = parse_box(fields[box_column].strip().split(","))
        except ValueError as error:
            raise plugin.UnusableRow(f"column {box_column}: {error}; check data.reader.columns") from None
        digest = hashlib.blake2b(fields[image_column].encode(), digest_size=16).digest()
        if digest not in images:
            data = row.image_column(image_column)
            images[digest] = (data, image_size(data))
        image, size = images[digest]
        return _record(fields[id_column], image, size, fields[text_column], box)

    yield from plugin.tsv_records(options, split, record)


@attrs.frozen
class GroundingJsonlOptions(plugin.SplitFilesOptions):
    """One JSONL per split: `image` (path relative to the file, base64, or an id in `images`), `text`,
    `box` [x0, y0, x1, y1] in pixels (optional in the test split), `id`."""


@READERS.add("grounding_jsonl", "JSON lines: image (path, base64 or TSV id), text, box [x0, y0, x1, y1] in pixels")
def read_grounding_jsonl(options: GroundingJsonlOptions, split: str) -> Iterator[dict]:
    def record(row: plugin.SplitRow) -> dict:
        values = row.values
        if (
            not isinstance(values.get("text"), str)
            or "image" not in values
            or (values.get("box") is None and split != "test")
        ):
            raise plugin.UnusableRow(
                "each line needs image, text and box [x0, y0, x1, y1] (box may be left out in the test split)"
            )
        try:
            box = parse_box(values["box"]) if values.get("box") is not None else None
        except (TypeError, ValueError) as error:
            raise plugin.UnusableRow(f"box: {error}") from None
        image = row.image(str(values["image"]))
        try:
            size = image_size(image)
        except (ValueError, OSError) as error:
            raise plugin.UnusableRow(f"image: {error}") from None
        return _record(str(values.get("id", row.default_id)), image, size, values["text"], box)

    yield from plugin.jsonl_records(options, split, record)
