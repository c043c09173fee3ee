"""Helpers for readers of raw records: image fields in every form datasets use, and the bad-record policy.

Bad rows (undecodable base64, files PIL cannot open, truncated JSON lines, missing ids) are
skipped and counted with a warning naming the file and line, or raise with `bad_records="error"`:
a run never dies on row 40,000 of 55,000 without saying which.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
from pathlib import Path

from ofa_core.errors import OFAError

logger = logging.getLogger(__name__)
BAD_RECORD_POLICIES = ("skip", "error")


class BadRecordError(OFAError):
    """A data row could not be read and the recipe asked for `bad_records: "error"`."""


def verified_image(data: bytes) -> bytes:
    """`data` if PIL can open it as an image, else ValueError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"not a readable image ({error.__class__.__name__})") from error
    return data


def decode_image(text: str) -> bytes:
    """Base64 (standard or URL-safe alphabet, as OFA's TSVs mix both) -> image bytes that PIL can open."""
    text = text.strip()
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not valid base64 ({error})") from error
    return verified_image(data)


def image_field(value: str, folder: Path) -> bytes:
    """An image given as a path (relative to the data file's folder) or as base64."""
    path = folder / value
    if len(value) < 1024 and path.is_file():
        return verified_image(path.read_bytes())
    return decode_image(value)


class BadRows:
    """Applies the bad-record policy and counts what was skipped."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.skipped = 0

    def __call__(self, where: str, why: str) -> None:
        message = f"{where}: {why}"
        if self.policy == "error":
            raise BadRecordError(f"{message}; fix or remove the row, or set data bad_records to \"skip\"")
        self.skipped += 1
        logger.warning("skipped %s", message)

    def summarise(self, source, split: str) -> None:
        if self.skipped:
            logger.warning("%s: skipped %d bad records in split %r", source, self.skipped, split)
