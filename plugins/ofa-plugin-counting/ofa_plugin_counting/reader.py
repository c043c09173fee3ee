"""The `counting_jsonl` reader: one JSON object per line with an image, the object and its count."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core.plugin import BadRows, PerSplitFiles, image_reference, jsonl_rows


@attrs.frozen
class ReaderOptions(PerSplitFiles):
    """One JSONL file per split (`train`, `valid`, `test`); image paths inside are relative to their JSONL file."""


def open_split(options: ReaderOptions, split: str) -> Iterator[dict]:
    """Records with `id`, `image` (a path or decoded bytes), `object` and `count` (None in unlabelled test data)."""
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    for number, row in jsonl_rows(path, bad):
        where = f"{path}:{number}"
        count = row.get("count")
        if not isinstance(row.get("object"), str) or "image" not in row:
            bad(where, "each line needs image, object and count")
            continue
        if not (count is None and split == "test") and (type(count) is not int or count < 0):
            bad(where, f"count must be a whole number >= 0, got {count!r}")
            continue
        try:
            image = image_reference(str(row["image"]), path.parent)
        except ValueError as error:
            bad(where, f"image: {error}")
            continue
        yield {
            "id": str(row.get("id", f"{path.stem}:{number}")),
            "image": image,
            "object": row["object"],
            "count": count,
        }
    bad.summarise(path, split)
