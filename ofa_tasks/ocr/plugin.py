"""The `ocr` task: the text in an image of a Chinese text line, as OFA-OCR reads and scores it.

Images keep their aspect ratio: each is resized so its long side is `patch_image_size` and padded to
a square with its own edge pixels, in the task's `preprocess`, because the core's image processor
only squashes images to a square. Labels are normalised as the official dataset does, and a
prediction is right when it equals the label once spaces are removed.
"""

from __future__ import annotations

import random

import attrs

from ofa_core import plugin
from ofa_tasks.ocr.image import MIN_SIDE, open_image, square
from ofa_tasks.ocr.metrics import METRICS
from ofa_tasks.ocr.readers import READERS
from ofa_tasks.ocr.text import OFFICIAL_MAX_CHARS, normalise_label, without_spaces

PROMPTS = {"zh": plugin.PromptTemplate(name="ocr.zh", lang="zh", source="图片上的文字是什么?", target="{label}")}


@attrs.frozen
class OcrOptions:
    """`task.options` of `ocr`: the square side, the label length and the seed of the training offsets."""

    patch_image_size: int = attrs.field(
        default=480, validator=[attrs.validators.instance_of(int), attrs.validators.ge(MIN_SIDE)]
    )
    """Side of the padded square: the checkpoint's `patch_image_size` (480 for OFA-OCR), at least 64."""
    max_chars: int = attrs.field(
        default=OFFICIAL_MAX_CHARS, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)]
    )
    """Characters of a normalised label kept (the official `--max-tgt-length`, 30 by default)."""
    seed: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
    """Seed of the training images' padding offsets (drawn once per record from the seed and the record id)."""


TASK = plugin.Task(
    "ocr",
    "read the Chinese text in an image (OFA-OCR): aspect-keeping resize, edge padding, exact match",
    generation="ocr-zh",
)


@TASK.hook
def preprocess(record: dict, split: str, options: OcrOptions) -> dict:
    """The image as a padded square (a random offset in training, centred otherwise), the normalised `label`
    and, when the record has text, its `references`."""
    where = f"record {record.get('id')!r}"
    if record.get("image") is None:
        raise plugin.OFAError(f"{where}: no image; ocr reads the text in an image, give one per record")
    try:
        image = open_image(record["image"])
    except (OSError, TypeError, ValueError) as error:
        raise plugin.OFAError(f"{where}: cannot read the image ({error}); give a readable image") from None
    rng = random.Random(f"{options.seed}:{record.get('id')}") if split == "train" else None
    text = record.get("text")
    if not isinstance(text, str) and split != "test":
        raise plugin.OFAError(f"{where}: no text; every {split} record needs the text in its image as 'text'")
    label = normalise_label(text, options.max_chars) if isinstance(text, str) else ""
    references = [without_spaces(label)] if isinstance(text, str) else []
    return {**record, "image": square(image, options.patch_image_size, rng), "label": label, "references": references}


@TASK.hook
def postprocess(text: str, record: dict, options: OcrOptions) -> str:
    """The decoded text without spaces, as the official evaluation compares it."""
    return without_spaces(text)


COMPONENTS = plugin.Components(prompts=PROMPTS.values(), readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())
