"""Records to predict on, from what a user points at: image files, folders of images, or TSVs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ofa_core.model.errors import OFAError
from ofa_core.plugin.records import BadRows, image_reference, tsv_rows

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _tsv_records(path: Path, fields: dict[str, str], bad: BadRows) -> Iterator[dict]:
    """Rows of a TSV with a header naming an 'image' column, or of a headerless `id<TAB>image` TSV
    (MUGE's and OFA's image files). Images are paths (relative to the TSV) or base64."""
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().rstrip("\r\n").split("\t")
    if "image" in first:
        header = first
    elif len(first) == 2:
        header = ["id", "image"]
    else:
        raise OFAError(f"{path}: expected a header with an 'image' column, or headerless 'id<TAB>base64 image' rows "
                       f"(found {len(first)} columns: {', '.join(first)[:80]})")
    for number, values in tsv_rows(path, len(header), bad):
        if header is first and number == 1:
            continue
        row = dict(zip(header, values))
        try:
            image = image_reference(row["image"], path.parent) if row["image"] else None
        except ValueError as error:
            bad(f"{path}:{number}", str(error))
            continue
        yield {"id": row.get("id") or f"{path.stem}:{number}", **fields, **row, "image": image}
    bad.summarise(path, "predict")


def records(inputs: list[str], fields: dict[str, str]) -> Iterator[dict]:
    """One record per image: files, images in folders (sorted), or TSV rows."""
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise OFAError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
            for image in images:
                yield {"id": image.stem, "image": str(image), **fields}
        elif path.suffix.lower() == ".tsv":
            yield from _tsv_records(path, fields, BadRows("skip"))
        elif path.is_file():
            yield {"id": path.stem, "image": str(path), **fields}
        else:
            raise OFAError(f"{path}: no such file or folder")
