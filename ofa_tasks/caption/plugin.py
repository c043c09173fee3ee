"""The `caption` task: prompts, the MUGE and OFA-TSV readers and CIDEr-D/BLEU-4/ROUGE-L, via the plugin hooks.

Prompts are the official strings, byte for byte: the English one starts with a space; the
Chinese one ends with an ASCII '?', as the OFA-CN checkpoints were trained (OFA-Chinese's
shorter "图片描述了什么?" differs).
"""

from __future__ import annotations

from ofa_core.plugin import Components, MetricSpec, PromptTemplate, TaskSpec
from ofa_tasks.caption.cider_d import CiderD, CiderDOptions
from ofa_tasks.caption.metrics import CaptionMetricOptions, CaptionScores
from ofa_tasks.caption.readers import READERS

PROMPTS = {
    "en": PromptTemplate(name="caption.en", lang="en", source=" what does the image describe?", target="{caption}"),
    "zh": PromptTemplate(name="caption.zh", lang="zh", source="图片描述了什么内容?", target="{caption}"),
}


def preprocess(record: dict, split: str, options: None) -> dict | None:
    """Training rows need a caption; evaluation rows keep every reference."""
    caption = str(record.get("caption", "")).strip()
    if split == "train" and not caption:
        return None
    return {**record, "caption": caption}


COMPONENTS = Components(
    prompts=PROMPTS.values(),
    readers=READERS,
    metrics={
        "caption": MetricSpec(
            options=CaptionMetricOptions,
            build=CaptionScores,
            higher_is_better=True,
            description="CIDEr-D, BLEU-4, ROUGE-L (x100); tokenize 'zh' (per character) or 'en'",
            example_score="cider",
        ),
        "cider_d": MetricSpec(
            options=CiderDOptions,
            build=CiderD,
            higher_is_better=True,
            description="CIDEr-D per caption with training-set document frequencies: the scst reward",
            example_score="cider_d",
        ),
    },
    tasks={
        "caption": TaskSpec(
            prompts={"zh": "caption.zh", "en": "caption.en"},
            reader="muge",
            loss="label_smoothed_cross_entropy",
            metrics=("caption",),
            generation="caption",
            preprocess=preprocess,
            description="describe an image (MUGE in Chinese, COCO-style in English)",
        )
    },
)
COMPONENTS.install(globals())
