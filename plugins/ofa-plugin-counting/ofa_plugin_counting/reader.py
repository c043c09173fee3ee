"""The `counting_jsonl` reader: one JSON object per line with an image, the object and its count."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core import plugin

READERS = plugin.Readers()
"""This plugin's one reader, declared above its function."""


@attrs.frozen
class ReaderOptions(plugin.PerSplitFiles):
    """One JSONL file per split (`train`, `valid`, `test`); image paths inside are relative to their JSONL file."""


@READERS.add("counting_jsonl", "JSON lines: image (path or base64), object, count (a whole number)")
def open_split(options: ReaderOptions, split: str) -> Iterator[dict]:
    """Records with `id`, `image` (a path or decoded bytes), `object` and `count` (None in unlabelled test data)."""

    def record(row: plugin.SplitRow) -> dict:
        values = row.values
        count = values.get("count")
        if not isinstance(values.get("object"), str) or "image" not in values:
            raise plugin.UnusableRow("each line needs image, object and count")
        if not (count is None and split == "test") and (type(count) is not int or count < 0):
            raise plugin.UnusableRow(f"count must be a whole number >= 0, got {count!r}")
        image = row.image(str(values["image"]))
        return {"id": str(values.get("id", row.default_id)), "image": image, "object": values["object"], "count": count}

    yield from plugin.jsonl_records(options, split, record)
