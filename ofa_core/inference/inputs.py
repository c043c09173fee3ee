"""Records to predict on, from what a user points at: image files, folders of images, TSVs or JSON lines.

Listing and loading are separate steps so that `ofa predict` can list millions of inputs cheaply (ids and
where each comes from, no image decoded), shard them over processes, and open only its own share:

- `entries(inputs, fields)`: one `Entry` per input image, in input order, images not yet opened;
- `unique_ids(entries)`: id -> source, or an `OFAError` naming both sources of a duplicate id;
- `load(entry)`: the record with its image verified (PIL open + verify), or `ValueError` saying why not.

Ids: a file inside a folder input -> its path relative to that folder, without the suffix (`cats/0001`);
a single image file -> its name without the suffix; a TSV or JSONL row -> its `id` (else `<file stem>:<line>`).
TSV and JSONL rows without an image are text-only records (a blank image, patch mask off: OFA's text-only form).
Folders are read recursively, in sorted order of the relative paths; hidden files and folders are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from ofa_core._errors import OFAError
from ofa_core.plugin import BadRows, image_reference, jsonl_rows, tsv_rows, verified_image_file

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class Entry(NamedTuple):
    """One input before its image is opened: `record["image"]` is a file path, or a TSV's raw image value
    (a path relative to `folder`, or base64) when `folder` is set."""

    id: str
    source: str  # where it comes from, for messages: a file path, or `<tsv>:<line>`
    record: dict
    folder: Path | None = None


class _Quiet:
    """A bad-row policy that says nothing: the rows were already reported when the inputs were listed."""

    def __call__(self, where: str, why: str) -> None:
        pass


def _tsv_entries(path: Path, fields: dict[str, str], bad) -> Iterator[Entry]:
    """Rows of a TSV with a header (its 'image' column, when there is one, holds paths relative to the TSV or
    base64; without one the rows are texts), or of a headerless `id<TAB>image` TSV (MUGE's and OFA's image files)."""
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().rstrip("\r\n").split("\t")
    header = ["id", "image"] if len(first) == 2 and "image" not in first and first[0] != "id" else first
    for number, values in tsv_rows(path, len(header), bad):
        if header is first and number == 1:
            continue
        row = dict(zip(header, values))
        yield Entry(row.get("id") or f"{path.stem}:{number}", f"{path}:{number}", {**fields, **row}, path.parent)


def _jsonl_entries(path: Path, fields: dict[str, str], bad) -> Iterator[Entry]:
    """Lines of JSON objects: the record's fields, `image` optional (a path relative to the file, or base64)."""
    for number, row in jsonl_rows(path, bad):
        key = row.get("id")
        yield Entry(
            str(key) if key is not None else f"{path.stem}:{number}", f"{path}:{number}", {**fields, **row}, path.parent
        )


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def entries(inputs: list[str], fields: dict[str, str], bad=None) -> Iterator[Entry]:
    """One entry per image, in input order: files, images in folders (recursively, sorted by relative path),
    TSV and JSONL rows; no inputs at all: one record of `fields` alone (id '0'; e.g. a text to classify). `bad`
    receives TSV rows with too few columns and JSONL lines that are not objects (default: skipped with a warning)."""
    bad = BadRows("skip") if bad is None else bad
    if not inputs:
        if not fields:
            raise OFAError(
                "INPUT: none given; pass images, folders, .tsv or .jsonl files, or the record's fields with --field"
            )
        yield Entry("0", "--field", dict(fields), Path.cwd())
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            images = sorted(
                (
                    p.relative_to(path)
                    for p in path.rglob("*")
                    if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p.relative_to(path)) and p.is_file()
                ),
                key=lambda relative: relative.as_posix(),
            )
            if not images:
                raise OFAError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
            for relative in images:
                image = path / relative
                yield Entry(
                    relative.with_suffix("").as_posix(), str(image), {"id": None, "image": str(image), **fields}
                )
        elif path.suffix.lower() == ".tsv":
            yield from _tsv_entries(path, fields, bad)
        elif path.suffix.lower() == ".jsonl":
            yield from _jsonl_entries(path, fields, bad)
        elif path.is_file():
            yield Entry(path.stem, str(path), {"id": None, "image": str(path), **fields})
        else:
            raise OFAError(f"{path}: no such file or folder")


def quiet_entries(inputs: list[str], fields: dict[str, str]) -> Iterator[Entry]:
    """`entries` a second time: the same entries, without reporting bad TSV rows again."""
    return entries(inputs, fields, _Quiet())


def unique_ids(listed: Iterable[Entry]) -> dict[str, str]:
    """id -> source, in input order; a duplicate id is an `OFAError` naming both of its sources."""
    seen: dict[str, str] = {}
    for entry in listed:
        first = seen.setdefault(entry.id, entry.source)
        if first != entry.source:
            raise OFAError(
                f"duplicate id {entry.id!r}: {first} and {entry.source}; ids must be unique across inputs "
                f"(rename one, or predict them in separate runs)"
            )
    return seen


def load(entry: Entry) -> dict:
    """The entry's record with its id and a verified image (a file path, or bytes from a TSV's base64);
    `ValueError` with the reason when the image cannot be opened."""
    record = {**entry.record, "id": entry.id}
    value = record.get("image")
    if entry.folder is None:
        record["image"] = verified_image_file(Path(value))
    elif value:
        record["image"] = image_reference(value, entry.folder)
    else:
        record["image"] = None
    return record


def records(inputs: list[str], fields: dict[str, str]) -> Iterator[dict]:
    """One record per readable image, in input order; unreadable ones are skipped with a warning."""
    for entry in entries(inputs, fields):
        try:
            yield load(entry)
        except ValueError as error:
            logger.warning("skipped %s: %s", entry.source, error)
