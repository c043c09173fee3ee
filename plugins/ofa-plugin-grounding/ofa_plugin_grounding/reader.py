"""The `grounding_jsonl` reader: one JSON object per line with an image, a phrase and a box."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from pathlib import Path

import attrs
import orjson

from ofa_core.plugin import OFAError, path_option


@attrs.frozen
class ReaderOptions:
    """One JSONL file per split; image paths inside are relative to their JSONL file."""

    train: str | None = path_option()
    valid: str | None = path_option()
    test: str | None = path_option()


def open_split(options: ReaderOptions, split: str) -> Iterator[dict]:
    """Records with `id`, `image` (a path or decoded bytes), `text`, `box` and `references`."""
    path = getattr(options, split, None)
    if path is None:
        raise OFAError(f"data.reader.{split}: no JSONL file for the {split} split; add \"{split}\": \"path.jsonl\" to the reader options")
    path = Path(path)
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            yield _record(path, number, line)


def _record(path: Path, number: int, line: bytes) -> dict:
    where = f"{path}:{number}"
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise OFAError(f"{where}: not valid JSON ({error})") from None
    missing = [key for key in ("image", "text", "box") if key not in row]
    if missing:
        raise OFAError(f"{where}: missing {', '.join(missing)}; each line needs image, text and box [x0, y0, x1, y1]")
    box = row["box"]
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        raise OFAError(f"{where}: box must be four numbers [x0, y0, x1, y1] in pixels, got {box!r}")
    return {
        "id": str(row.get("id", f"{path.stem}:{number}")),
        "image": _image(row["image"], path.parent, where),
        "text": row["text"],
        "box": [float(v) for v in box],
        "references": [" ".join(f"{v:g}" for v in box)],
    }


def _image(value: str, folder: Path, where: str) -> str | bytes:
    """A path (relative to the JSONL file) if one exists, else base64-encoded image bytes."""
    if not isinstance(value, str) or not value:
        raise OFAError(f"{where}: image must be a path or a base64 string")
    candidate = folder / value
    if len(value) < 4096 and candidate.is_file():
        return str(candidate)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise OFAError(f"{where}: image '{value[:40]}' is neither an existing file (relative to {folder}) nor base64") from None
