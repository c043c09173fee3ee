"""The `snli_ve` task: does the image (and its premise caption) imply the hypothesis; yes, no or maybe.

As OFA's SNLI-VE fine-tunes (`--prompt-type prev_output --add-caption`): the encoder reads the premise and the
hypothesis, both cleaned as OFA's `pre_caption`; the decoder is prompted with that source and answers ' yes',
' no' or ' maybe' (with the space, as OFA encodes targets). Every candidate is scored and the best wins, in
the order no, yes, maybe. The option `add_caption` (false: OFA's zero-shot form, the hypothesis alone) has
OFA's flag name, so a converted checkpoint's `ofa_task.json` sets it.
"""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_tasks.snli_ve.metrics import METRICS
from ofa_tasks.snli_ve.readers import READERS
from ofa_tasks.snli_ve.text import ANSWERS, LABEL_WORDS, OFFICIAL_MAX_WORDS, clean_caption

WITH_CAPTION = ' can image and text1 " {premise} " imply text2 " {hypothesis} "?'
"""OFA's source with `--add-caption` (the fine-tunes)."""
WITHOUT_CAPTION = ' does the image describe " {hypothesis} "?'
"""OFA's source without it (its zero-shot script)."""

PROMPTS = (
    plugin.PromptTemplate(
        name="snli_ve.en", lang="en", source="{statement_en}", target=" {label}", prompt_type="prev_output"
    ),
)


@attrs.frozen(field_transformer=plugin.closed_set_fields_last)
class SnliVeOptions(plugin.ClosedSetOptions):
    """`task.options` of `snli_ve`: the text clean-up, and how the three answers are used (see `ClosedSetOptions`)."""

    add_caption: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """OFA's `--add-caption`: the source names the premise caption and the hypothesis; false: the hypothesis alone."""
    max_words: int = attrs.field(
        default=OFFICIAL_MAX_WORDS, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)]
    )
    """Words kept of the premise and of the hypothesis (OFA's `--max-src-length`, 80 in its scripts)."""


TASK = plugin.Task(
    "snli_ve",
    "visual entailment (SNLI-VE): does the image and premise imply the hypothesis; yes, no or maybe",
    generation="default",
)


@TASK.hook
def closed_set(options: SnliVeOptions) -> plugin.ClosedSet:
    """' no', ' yes', ' maybe': tokenized as the targets are, in OFA's candidate order."""
    return options.closed_set(tuple(" " + answer for answer in ANSWERS))


@TASK.hook
def preprocess(record: dict, split: str, options: SnliVeOptions) -> dict:
    """`statement_en`, OFA's source from the cleaned premise and hypothesis, and `label` as yes/no/maybe (SNLI's
    words are mapped)."""
    where = f"record {record.get('id')!r}"
    if not isinstance(record.get("hypothesis"), str):
        raise plugin.OFAError(
            f"{where}: snli_ve needs the field 'hypothesis' (the text to check); with ofa predict pass "
            f"--field hypothesis='two dogs play' (and --field premise='...' unless add_caption is false)"
        )
    hypothesis = clean_caption(record["hypothesis"], options.max_words)
    if not options.add_caption:
        statement = WITHOUT_CAPTION.format(hypothesis=hypothesis)
    elif isinstance(record.get("premise"), str):
        statement = WITH_CAPTION.format(
            premise=clean_caption(record["premise"], options.max_words), hypothesis=hypothesis
        )
    else:
        raise plugin.OFAError(
            f"{where}: snli_ve needs the field 'premise' (the image's caption); with ofa predict pass "
            f"--field premise='...', or set the task option add_caption to false"
        )
    prepared = {**record, "statement_en": statement}
    label = LABEL_WORDS.get(record.get("label"), record.get("label"))
    if label not in ANSWERS:
        if split != "test" or label:
            raise plugin.OFAError(
                f"{where}: label {label!r} is not entailment/yes, contradiction/no or neutral/maybe; "
                f"every {split} record needs one"
            )
        return {**prepared, "label": "", "references": []}
    return {**prepared, "label": label, "references": [label]}


@TASK.hook
def postprocess(text: str, record: dict, options: SnliVeOptions) -> str:
    """The answer without the space the candidates carry."""
    return text.strip()


COMPONENTS = plugin.Components(prompts=PROMPTS, readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())
