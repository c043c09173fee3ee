"""Caption data readers: MUGE (captions JSONL + image TSV) and the official OFA caption TSV.

Bad rows are skipped or raise per `bad_records` (see `ofa_core.plugin.BadRows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import orjson

from ofa_core import plugin
from ofa_tasks.caption.text import official_caption

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""


@attrs.frozen
class MugeOptions:
    """A MUGE folder as downloaded: `IC_<split>.jsonl` captions and `IC_<split>.tsv` images per split."""

    folder: str = plugin.path_option()
    bad_records: str = attrs.field(default="skip", validator=attrs.validators.in_(plugin.BAD_RECORD_POLICIES))

    def files(self, split: str) -> tuple[Path, Path]:
        captions, images = Path(self.folder) / f"IC_{split}.jsonl", Path(self.folder) / f"IC_{split}.tsv"
        for file in (captions, images):
            if not file.is_file():
                raise plugin.OFAError(
                    f"data.reader.folder: {file} not found; MUGE's {split} split needs "
                    f"IC_{split}.jsonl and IC_{split}.tsv in {self.folder}"
                )
        return captions, images


@READERS.add("muge", "MUGE folder: IC_<split>.jsonl captions + IC_<split>.tsv base64 images")
def read_muge(options: MugeOptions, split: str) -> Iterator[dict]:
    """Training: one record per (image, caption), captions of an image adjacent; otherwise one per image."""
    bad = plugin.BadRows(options.bad_records)
    captions_path, images_path = options.files(split)
    images = plugin.TsvIndex(images_path)
    with captions_path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            where = f"{captions_path}:{number}"
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                image_id = str(item["image_id"])
                texts = item.get("text", [])
                captions = [texts] if isinstance(texts, str) else [str(text) for text in texts]
            except (orjson.JSONDecodeError, KeyError, TypeError) as error:
                bad(where, f"not a MUGE caption line ({error.__class__.__name__}: {error})")
                continue
            if image_id not in images:
                bad(where, f"image id {image_id} has no row in {images_path}")
                continue
            try:
                row = images[image_id]
                image = plugin.decode_image(row[1] if len(row) > 1 else "")
            except ValueError as error:
                bad(f"{images_path}:{images.line_number(image_id)}", f"image {image_id}: {error}")
                continue
            if split == "train":
                for index, caption in enumerate(captions):
                    yield {
                        "id": f"{image_id}#{index}",
                        "image_id": image_id,
                        "image": image,
                        "caption": caption,
                        "references": captions,
                    }
            else:
                yield {
                    "id": image_id,
                    "image_id": image_id,
                    "image": image,
                    "caption": captions[0] if captions else "",
                    "references": captions,
                }
    images.close()
    bad.summarise(captions_path, split)


@attrs.frozen
class OfaCaptionTsvOptions(plugin.PerSplitFiles):
    """The official OFA caption TSV per split: uniq-id, image-id, caption (eval: references joined by '&&'),
    objects, image.

    Training rows are read as OFA's `selected_cols 0,4,2` (id = uniq-id), the others as `1,4,2` (id = image-id).
    """


@READERS.add("ofa_caption_tsv", "official OFA caption TSV (uniq-id, image-id, caption, objects, image)")
def read_ofa_caption_tsv(options: OfaCaptionTsvOptions, split: str) -> Iterator[dict]:
    """One record per row; references are the '&&'-separated captions of the row, cleaned as OFA's dataset does."""
    path = options.split_file(split)
    bad = plugin.BadRows(options.bad_records)
    for number, fields in plugin.tsv_rows(path, 5, bad):
        try:
            image = plugin.decode_image(fields[4])
        except ValueError as error:
            bad(f"{path}:{number}", f"image: {error}")
            continue
        references = [text for text in map(official_caption, fields[2].split("&&")) if text]
        row_id = fields[0] if split == "train" else fields[1]
        yield {
            "id": row_id,
            "image_id": fields[1],
            "image": image,
            "caption": references[0] if references else "",
            "references": references,
        }
    bad.summarise(path, split)
