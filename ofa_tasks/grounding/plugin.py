"""The `grounding` task: the region of an image a referring expression describes, as four location tokens.

The box is quantised as OFA's RefCOCO fine-tunes do: the image is resized to a square of
`patch_image_size` (aspect not kept), the box scaled with it, divided by `max_image_size` and cut
into `num_bins` bins, giving `<bin_x0> <bin_y0> <bin_x1> <bin_y1>`. Generated tokens are mapped
back to pixels of the original image, which is what the references and Acc@0.5 use.
"""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_tasks.grounding.metrics import METRICS
from ofa_tasks.grounding.readers import READERS, image_size
from ofa_tasks.grounding.text import OFFICIAL_MAX_WORDS, clean_expression

PROMPTS = {
    "en": plugin.PromptTemplate(
        name="grounding.en",
        lang="en",
        source=' which region does the text " {expression} " describe?',
        target="{region}",
    ),
    "zh": plugin.PromptTemplate(
        name="grounding.zh", lang="zh", source='这段文字" {expression} "描述的是哪个区域？', target="{region}"
    ),
}

_positive = [attrs.validators.instance_of(int), attrs.validators.gt(0)]


@attrs.frozen
class GroundingOptions:
    """`task.options` of `grounding`: the box quantisation of the checkpoint and the decoding restriction."""

    restrict_to_bins: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Decode only `<bin_*>` tokens (EOS stays allowed), so every prediction is a box; OFA's own evaluation has
    no such restriction, and an undertrained model may then emit other tokens (a miss here)."""
    num_bins: int = attrs.field(default=1000, validator=[attrs.validators.instance_of(int), attrs.validators.gt(1)])
    """Location bins of the model's vocabulary (`--num-bins`)."""
    patch_image_size: int = attrs.field(default=512, validator=_positive)
    """Side of the square the checkpoint resizes images to (`--patch-image-size`); only its ratio to
    max_image_size matters: 512 for the RefCOCO fine-tunes, 480 for the official zero-shot evaluation."""
    max_image_size: int = attrs.field(default=512, validator=_positive)
    """Divisor of the resized box before binning (`--max-image-size`, 512 in every official script)."""
    max_words: int = attrs.field(default=OFFICIAL_MAX_WORDS, validator=_positive)
    """Words of the expression kept after clean-up (`--max-src-length` of the official scripts)."""

    def quantisation(self) -> dict[str, int]:
        """Keyword arguments of the box helpers, so targets and predictions use the same quantisation."""
        return {
            "patch_image_size": self.patch_image_size,
            "max_image_size": self.max_image_size,
            "num_bins": self.num_bins,
        }


TASK = plugin.Task(
    "grounding",
    "locate the region a referring expression describes (RefCOCO/+/g, RefCOCO-CN), as a box",
    generation="grounding",
)


@TASK.hook
def preprocess(record: dict, split: str, options: GroundingOptions) -> dict:
    """The cleaned `expression`, the original image size, and for labelled records the target `region`."""
    where = f"record {record.get('id')!r}"
    if not isinstance(record.get("text"), str) and isinstance(record.get("expression"), str):
        record = {**record, "text": record["expression"]}  # the prompt's field, as the HTTP API and its page name it
    if not isinstance(record.get("text"), str):
        raise plugin.OFAError(
            f"{where}: grounding needs the field 'text' (the referring expression); with ofa predict "
            f"pass --field text='the man in red' or a 'text' TSV column, else give it in the reader"
        )
    if record.get("image") is None:
        raise plugin.OFAError(f"{where}: no image; grounding needs one per record")
    if record.get("width") and record.get("height"):
        size = (int(record["width"]), int(record["height"]))
    else:
        try:
            size = image_size(record["image"])
        except OSError as error:
            raise plugin.OFAError(f"{where}: cannot read the image size ({error}); give a readable image") from None
    prepared = {
        **record,
        "expression": clean_expression(record["text"], options.max_words),
        "width": size[0],
        "height": size[1],
    }
    if record.get("box") is not None:
        prepared["region"] = plugin.box_to_text(record["box"], size, **options.quantisation())
    elif split != "test":
        raise plugin.OFAError(f"{where}: no box; every {split} record needs one ([x0, y0, x1, y1] in pixels)")
    return prepared


@TASK.hook
def postprocess(text: str, record: dict, options: GroundingOptions) -> list[float] | None:
    """[x0, y0, x1, y1] in pixels of the original image from the first four `<bin_*>` tokens; None when there are fewer.

    Numbers, not text, so every output (eval and predict JSONL, the pipeline, the HTTP API) carries a box a
    program can use as it is."""
    box = plugin.text_to_box(text, (record["width"], record["height"]), **options.quantisation())
    return None if box is None else [float(value) for value in box]


@TASK.hook
def allowed_tokens(options: GroundingOptions, tokenizer) -> list[int]:
    """The ids of `<bin_0>` .. `<bin_{num_bins-1}>`; every id of the vocabulary when `restrict_to_bins` is off."""
    if not options.restrict_to_bins:
        return list(range(len(tokenizer)))
    model_bins = getattr(tokenizer, "num_bins", None)
    if model_bins is not None and model_bins != options.num_bins:
        raise plugin.OFAError(
            f"task.options.num_bins: {options.num_bins}, but the model's tokenizer has {model_bins} "
            f"location tokens; set num_bins to {model_bins}"
        )
    ids = tokenizer.convert_tokens_to_ids([plugin.bin_token(index) for index in range(options.num_bins)])
    if any(found is None or found == tokenizer.unk_token_id for found in ids):
        raise plugin.OFAError(
            f"task.options.restrict_to_bins: the model's vocabulary lacks {plugin.bin_token(0)} .. "
            f"{plugin.bin_token(options.num_bins - 1)}; use an OFA checkpoint with location tokens, "
            f"or set restrict_to_bins to false"
        )
    return list(ids)


COMPONENTS = plugin.Components(prompts=PROMPTS.values(), readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())
