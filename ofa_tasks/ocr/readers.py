"""OCR readers: the official OFA-OCR TSV (uniq-id, base64 image, text; `selected_cols` 0,1,2) and JSON lines."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core.plugin import (
    BadRows,
    PerSplitFiles,
    ReaderSpec,
    SplitFilesOptions,
    columns_option,
    decode_image,
    image_reference,
    jsonl_rows,
    tsv_rows,
)

OFFICIAL_COLUMNS = (0, 1, 2)
"""uniq-id, image, text: `selected_cols` of the official OCR evaluation scripts."""


@attrs.frozen
class OcrTsvOptions(PerSplitFiles):
    """The official OCR TSV per split; `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = columns_option("uniq-id, image and text", 3, default=OFFICIAL_COLUMNS)
    """Where uniq-id, image (base64) and text are: [0, 1, 2] in the official files."""


def read_ocr_tsv(options: OcrTsvOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    id_column, image_column, text_column = options.columns
    for number, fields in tsv_rows(path, max(options.columns) + 1, bad):
        try:
            image = decode_image(fields[image_column])
        except ValueError as error:
            bad(f"{path}:{number}", f"column {image_column} (image): {error}; check data.reader.columns")
            continue
        yield {"id": fields[id_column], "image": image, "text": fields[text_column]}
    bad.summarise(path, split)


@attrs.frozen
class OcrJsonlOptions(SplitFilesOptions):
    """One JSONL per split: `image` (path relative to the file, base64, or an id in `images`), `text`
    (may be left out in the test split), `id`."""


def read_ocr_jsonl(options: OcrJsonlOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    images = options.image_index()
    bad = BadRows(options.bad_records)
    for number, row in jsonl_rows(path, bad):
        where = f"{path}:{number}"
        text = row.get("text")
        if "image" not in row or not (isinstance(text, str) or (text is None and split == "test")):
            bad(where, "each line needs image and text (a string; text may be left out in the test split)")
            continue
        try:
            image = image_reference(str(row["image"]), path.parent, images)
        except ValueError as error:
            bad(where, f"image: {error}")
            continue
        record = {"id": str(row.get("id", f"{path.stem}:{number}")), "image": image}
        yield record if text is None else {**record, "text": text}
    if images is not None:
        images.close()
    bad.summarise(path, split)


READERS = {
    "ocr_tsv": ReaderSpec(
        options=OcrTsvOptions,
        open=read_ocr_tsv,
        description="official OFA-OCR TSV (uniq-id, base64 image, text; columns as selected_cols)",
    ),
    "ocr_jsonl": ReaderSpec(
        options=OcrJsonlOptions, open=read_ocr_jsonl, description="JSON lines: image (path, base64 or TSV id), text"
    ),
}
"""The readers this task registers, by name."""
