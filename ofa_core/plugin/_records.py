"""Helpers for readers of raw records: image fields in every form datasets use, per-split file options,
JSON lines, and the bad-record policy.

Bad rows (undecodable base64, files PIL cannot open, truncated JSON lines, missing ids) are
skipped and counted with a warning naming the file and line, or raise with `bad_records="error"`:
a run never dies on row 40,000 of 55,000 without saying which.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs
import orjson

from ofa_core._errors import OFAError
from ofa_core.plugin._specs import path_option
from ofa_core.plugin._tsv import TsvIndex

logger = logging.getLogger(__name__)
BAD_RECORD_POLICIES = ("skip", "error")


class BadRecordError(OFAError):
    """A data row could not be read and the recipe asked for `bad_records: "error"`."""


def _verify(source) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"not a readable image ({error.__class__.__name__})") from error


def verified_image(data: bytes) -> bytes:
    """`data` if PIL can open it as an image, else ValueError."""
    _verify(io.BytesIO(data))
    return data


def verified_image_file(path: Path) -> str:
    """`path` (as a string) if PIL can open the file as an image, else ValueError.

    Only the header (and the checksums of formats that have them) is read, and the record keeps
    the path: an ImageNet-sized folder is decoded per batch, never held in memory.
    """
    _verify(path)
    return str(path)


def decode_image(text: str) -> bytes:
    """Base64 (standard or URL-safe alphabet, as OFA's TSVs mix both) -> image bytes that PIL can open."""
    text = text.strip()
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not valid base64 ({error})") from error
    return verified_image(data)


def image_reference(value: str, folder: Path, images: TsvIndex | None = None) -> str | bytes:
    """An image given as an id in the `images` TSV (bytes), a file relative to `folder` (its path) or base64 (bytes)."""
    if images is not None and value in images:
        row = images[value]
        if len(row) < 2:
            raise ValueError(f"row {value!r} of {images.path} has no image column")
        return decode_image(row[1])
    path = folder / value
    if len(value) < 1024 and path.is_file():
        return verified_image_file(path)
    try:
        return decode_image(value)
    except ValueError as error:
        if len(value) >= 1024:
            raise
        where = f"a file in {folder}" + (f", an id in {images.path}" if images is not None else "")
        raise ValueError(f"{value!r} is neither {where} nor base64 image data ({error})") from None


@attrs.frozen
class PerSplitFiles:
    """Reader options for one data file per split and the bad-record policy."""

    train: str | None = path_option(split="train")
    valid: str | None = path_option(split="valid")
    test: str | None = path_option(split="test")
    bad_records: Literal["skip", "error"] = attrs.field(
        default="skip", validator=attrs.validators.in_(BAD_RECORD_POLICIES)
    )

    def split_file(self, split: str) -> Path:
        """The file of `split`, or an error saying how to add it."""
        path = getattr(self, split, None)
        if path is None:
            raise OFAError(
                f'data.reader.{split}: no file for the {split} split; add "{split}": "path" to the reader options'
            )
        return Path(path)


def columns_option(what: str, count: int | None, *, default: tuple[int, ...] | None) -> Any:
    """An options field naming the TSV columns a reader takes, as the official scripts' `selected_cols`.

    `what` names the columns in order ("uniq-id, image and text"); a value must be `count` distinct column
    numbers from 0, or with `count` None at least two (a list whose length varies). `default` None leaves
    the field optional, for readers that need the user to say.
    """

    def check(_instance: Any, _attribute: attrs.Attribute, value: tuple[int, ...] | None) -> None:
        if value is None and default is None:
            return
        wrong_count = len(value) != count if count is not None else len(value) < 2
        if (
            wrong_count
            or len(set(value)) != len(value)
            or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in value)
        ):
            number = f"{count} " if count is not None else ""
            raise ValueError(
                f"give {number}distinct column numbers (from 0) for {what}, as the official selected_cols; "
                f"got {list(value)}"
            )

    converter = tuple if default is not None else attrs.converters.optional(tuple)
    return attrs.field(default=default, converter=converter, validator=check)


@attrs.frozen
class SplitFilesOptions(PerSplitFiles):
    """`PerSplitFiles` plus an optional TSV of images the rows may name by id."""

    images: str | None = path_option()
    """TSV of `id<TAB>base64 image` rows."""

    def image_index(self) -> TsvIndex | None:
        return TsvIndex(self.images) if self.images else None


class BadRows:
    """Applies the bad-record policy and counts what was skipped."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.skipped = 0

    def __call__(self, where: str, why: str) -> None:
        message = f"{where}: {why}"
        if self.policy == "error":
            raise BadRecordError(f'{message}; fix or remove the row, or set data.reader.bad_records to "skip"')
        self.skipped += 1
        logger.warning("skipped %s", message)

    def summarise(self, source, split: str) -> None:
        if self.skipped:
            logger.warning("%s: skipped %d bad records in split %r", source, self.skipped, split)


def jsonl_rows(path: Path, bad: BadRows) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file; other lines are bad rows."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                bad(f"{path}:{number}", f"not valid JSON ({error})")
                continue
            if not isinstance(row, dict):
                bad(f"{path}:{number}", f"expected a JSON object, got {type(row).__name__}")
                continue
            yield number, row


def tsv_rows(path: Path, columns: int, bad: BadRows) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each line of a tab-separated file with at least `columns` fields; shorter lines are
    bad rows, blank lines are skipped."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < columns:
                bad(f"{path}:{number}", f"expected {columns} tab-separated columns, found {len(fields)}")
                continue
            yield number, fields


class UnusableRow(Exception):
    """Raised by a reader's row function for a row it cannot make a record of; the message says why, and the
    bad-record policy skips the row (counted, with a warning naming file and line) or stops the run."""


@attrs.frozen
class SplitRow:
    """One row of a split's file as `jsonl_records` and `tsv_records` hand it to a reader's row function."""

    path: Path
    number: int
    """The row's line number, from 1."""
    values: Any
    """The line's JSON object, or its tab-separated fields."""
    images: TsvIndex | None = None
    """The options' TSV of images a JSON line may name by id."""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.number}"

    @property
    def default_id(self) -> str:
        """The record id of a row that gives none: the file's name and the line number."""
        return f"{self.path.stem}:{self.number}"

    def image(self, value: str) -> str | bytes:
        """A JSON line's image: a file beside the JSONL, base64 data, or an id in the options' `images`."""
        try:
            return image_reference(value, self.path.parent, self.images)
        except ValueError as error:
            raise UnusableRow(f"image: {error}") from None

    def image_column(self, column: int) -> bytes:
        """The base64 image in TSV column `column`."""
        try:
            return decode_image(self.values[column])
        except ValueError as error:
            raise UnusableRow(f"column {column} (image): {error}; check data.reader.columns") from None


RowFunction = Callable[[SplitRow], "dict | None"]
"""A reader's own part: one row -> its record (None: nothing to read there), or `UnusableRow`."""


def jsonl_records(options: PerSplitFiles, split: str, record: RowFunction) -> Iterator[dict]:
    """The records `record` makes of the lines of `split`'s JSON-lines file, with the bad-record policy applied and
    summarised; lines may name images in the options' `images` TSV (`SplitFilesOptions`)."""
    path = options.split_file(split)
    images = options.image_index() if isinstance(options, SplitFilesOptions) else None
    bad = BadRows(options.bad_records)
    try:
        yield from _records(jsonl_rows(path, bad), path, images, bad, record)
    finally:
        if images is not None:
            images.close()
    bad.summarise(path, split)


def tsv_records(options: PerSplitFiles, split: str, record: RowFunction) -> Iterator[dict]:
    """The records `record` makes of the rows of `split`'s TSV, which need every column of the options' `columns`
    (`columns_option`); the bad-record policy is applied and summarised."""
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    yield from _records(tsv_rows(path, max(options.columns) + 1, bad), path, None, bad, record)
    bad.summarise(path, split)


def _records(
    rows: Iterable[tuple[int, Any]], path: Path, images: TsvIndex | None, bad: BadRows, record: RowFunction
) -> Iterator[dict]:
    for number, values in rows:
        row = SplitRow(path, number, values, images)
        try:
            made = record(row)
        except UnusableRow as problem:
            bad(row.where, str(problem))
            continue
        if made is not None:
            yield made
