"""OCR readers: the official OFA-OCR TSV (uniq-id, base64 image, text; `selected_cols` 0,1,2) and JSON lines."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core import plugin

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""

OFFICIAL_COLUMNS = (0, 1, 2)
"""uniq-id, image, text: `selected_cols` of the official OCR evaluation scripts."""


@attrs.frozen
class OcrTsvOptions(plugin.PerSplitFiles):
    """The official OCR TSV per split; `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = plugin.columns_option("uniq-id, image and text", 3, default=OFFICIAL_COLUMNS)
    """Where uniq-id, image (base64) and text are: [0, 1, 2] in the official files."""


@READERS.add("ocr_tsv", "official OFA-OCR TSV (uniq-id, base64 image, text; columns as selected_cols)")
def read_ocr_tsv(options: OcrTsvOptions, split: str) -> Iterator[dict]:
    id_column, image_column, text_column = options.columns

    def record(row: plugin.SplitRow) -> dict:
        fields = row.values
        return {"id": fields[id_column], "image": row.image_column(image_column), "text": fields[text_column]}

    yield from plugin.tsv_records(options, split, record)


@attrs.frozen
class OcrJsonlOptions(plugin.SplitFilesOptions):
    """One JSONL per split: `image` (path relative to the file, base64, or an id in `images`), `text`
    (may be left out in the test split), `id`."""


@READERS.add("ocr_jsonl", "JSON lines: image (path, base64 or TSV id), text")
def read_ocr_jsonl(options: OcrJsonlOptions, split: str) -> Iterator[dict]:
    def record(row: plugin.SplitRow) -> dict:
        text = row.values.get("text")
        if "image" not in row.values or not (isinstance(text, str) or (text is None and split == "test")):
            raise plugin.UnusableRow(
                "each line needs image and text (a string; text may be left out in the test split)"
            )
        made = {"id": str(row.values.get("id", row.default_id)), "image": row.image(str(row.values["image"]))}
        return made if text is None else {**made, "text": text}

    yield from plugin.jsonl_records(options, split, record)
