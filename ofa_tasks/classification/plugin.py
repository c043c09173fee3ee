"""The `classification` task: an image's label from a fixed set, via the plugin hooks.

The prompt is OFA's caption prompt, as the official ImageNet fine-tuning uses it; the target is
the label. Decoding never leaves the label set (`closed_set`): by default every label is scored
and the best wins, OFA's all-candidate inference. With `answer_space` and the `image_classify_tsv`
reader it is OFA's `image_classify` task (recipes/official/imagenet.json).
"""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_tasks.classification.labels import ClassificationOptions, label_set
from ofa_tasks.classification.metrics import METRICS
from ofa_tasks.classification.readers import READERS

PROMPTS = {
    "zh": plugin.PromptTemplate(name="classification.zh", lang="zh", source="图片描述了什么内容?", target="{label}"),
    "en": plugin.PromptTemplate(
        name="classification.en", lang="en", source=" what does the image describe?", target="{label}"
    ),
}


TASK = plugin.Task(
    "classification",
    "label an image from a fixed set (labels or labels_file); rank or trie-constrained beam inference",
    generation={"normalize_scores": False},
)


@TASK.hook
def preprocess(record: dict, split: str, options: ClassificationOptions) -> dict:
    """Every label must be one of the task's labels: a stray one means the data and the label set disagree.

    Such a record is an error, not skipped, in every split: skipping would silently drop a whole
    misspelt class from training, or score evaluation against labels the model can never emit.
    Only test records may come without a label (prediction).
    """
    label = str(record.get("label") or "").strip()
    if not label:
        if split != "test":
            raise plugin.OFAError(f"record {record.get('id')!r}: no label; every {split} record needs one")
        return {**record, "label": "", "references": []}
    label_set(options).check(label, record.get("id"))
    return {**record, "label": " " + label if options.answer_space else label, "references": [label]}


@TASK.hook
def postprocess(text: str, record: dict, options: ClassificationOptions) -> str:
    """The label without the space `answer_space` puts before candidates."""
    return text.strip()


@TASK.hook
def closed_set(options: ClassificationOptions) -> plugin.ClosedSet:
    labels = label_set(options).labels
    answers = tuple(" " + label for label in labels) if options.answer_space else labels
    return attrs.evolve(options.closed_set(answers, top_k=min(options.top_k, len(labels))), noun="labels")


COMPONENTS = plugin.Components(prompts=PROMPTS.values(), readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())
