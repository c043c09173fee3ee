"""The `text_classification` task: a GLUE label read from the model's next word after the whole prompt.

As OFA's GLUE fine-tunes (`--prompt-type src`), the decoder is fed the whole source, its EOS
included, and the answer is the word it predicts next, among the dataset's answer words only: each is
one GPT-2 token, so ranking the closed set of answers is the argmax of the answer-masked logits at
the last source position, which is what the official evaluation takes. Training restricts the loss
to the answer words too, as the official constraint masks do.
"""

from __future__ import annotations

from typing import Literal

import attrs

from ofa_core import plugin
from ofa_tasks.text_classification.glue import GLUE, OFFICIAL_MAX_WORDS, answer_word, clean
from ofa_tasks.text_classification.metrics import METRICS
from ofa_tasks.text_classification.readers import READERS

PROMPTS = {
    "en": plugin.PromptTemplate(
        name="text_classification.en", lang="en", source="{prompt_text}", target="{answer}", prompt_type="src"
    )
}


@attrs.frozen(field_transformer=plugin.closed_set_fields_last)
class TextClassificationOptions(plugin.ClosedSetOptions):
    """`task.options` of `text_classification`: the GLUE dataset (its prompt and labels) and the word limit."""

    dataset: Literal["sst2", "cola", "mnli", "mrpc", "qnli", "qqp", "rte"] = attrs.field(
        default="sst2", validator=attrs.validators.in_(tuple(GLUE))
    )
    """Which GLUE dataset: decides the prompt, the record fields, the label words and their order."""
    max_words: int = attrs.field(
        default=OFFICIAL_MAX_WORDS, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)]
    )
    """Words kept of each text (the official `--max-src-length`, applied per text as a word limit)."""
    restrict_loss: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Train with the logits outside the answer words masked, as the official GLUE tasks always do."""


TASK = plugin.Task(
    "text_classification",
    "classify a text or a text pair (GLUE: SST-2, CoLA, MNLI, MRPC, QNLI, QQP, RTE), text only",
    generation="default",
)


@TASK.hook
def preprocess(record: dict, split: str, options: TextClassificationOptions) -> dict:
    """The official prompt over the cleaned texts (`prompt_text`), the answer word as the target (with the
    leading space the official target has) and as the reference."""
    dataset = GLUE[options.dataset]
    where = f"record {record.get('id')!r}"
    texts = record.get("texts")
    if texts is None:
        missing = [name for name in dataset.fields if not isinstance(record.get(name), str)]
        if missing:
            raise plugin.OFAError(
                f"{where}: {options.dataset} needs the text fields {', '.join(dataset.fields)} "
                f"(missing {', '.join(missing)}); with ofa predict pass --field {missing[0]}='...'"
            )
        texts = [record[name] for name in dataset.fields]
    if len(texts) != len(dataset.fields):
        raise plugin.OFAError(
            f"{where}: {len(texts)} texts, but {options.dataset} has {len(dataset.fields)} "
            f"({', '.join(dataset.fields)}); check data.reader.columns (official: {list(dataset.columns)})"
        )
    cleaned = dict(zip(dataset.fields, (clean(str(text), options.max_words) for text in texts)))
    prepared = {**record, "prompt_text": dataset.prompt.format(**cleaned)}
    raw = record.get("label")
    if raw is None or str(raw).strip() == "":
        if split != "test":
            raise plugin.OFAError(f"{where}: no label; every {split} record needs one")
        return {**prepared, "answer": "", "references": []}
    word = answer_word(dataset, str(raw))
    if word is None:
        raise plugin.OFAError(
            f"{where}: label {raw!r} is not one of {options.dataset}'s labels "
            f"({', '.join(sorted(dataset.labels))}); check the label column or task.options.dataset"
        )
    return {**prepared, "answer": f" {word}", "references": [word]}


@TASK.hook
def postprocess(text: str, record: dict, options: TextClassificationOptions) -> str:
    return text.strip()


@TASK.hook
def closed_set(options: TextClassificationOptions) -> plugin.ClosedSet:
    """The dataset's answer words, each with its leading space as the targets have it, in the official order."""
    answers = GLUE[options.dataset].answers
    return attrs.evolve(
        options.closed_set([f" {word}" for word in answers], top_k=min(options.top_k, len(answers))), noun="labels"
    )


COMPONENTS = plugin.Components(prompts=PROMPTS.values(), readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())
