"""The `caption` task: prompts, the MUGE and OFA-TSV readers and CIDEr-D/BLEU-4/ROUGE-L, via the plugin hooks.

Prompts are the official strings, byte for byte: the English one starts with a space; the
Chinese one ends with an ASCII '?', as the OFA-CN checkpoints were trained (OFA-Chinese's
shorter "图片描述了什么?" differs).
"""

from __future__ import annotations

from ofa_core import plugin
from ofa_tasks.caption.cider_d import METRICS as CIDER_D_METRICS
from ofa_tasks.caption.metrics import METRICS as CAPTION_METRICS
from ofa_tasks.caption.readers import READERS

PROMPTS = {  # Chinese first: the task's default language
    "zh": plugin.PromptTemplate(name="caption.zh", lang="zh", source="图片描述了什么内容?", target="{caption}"),
    "en": plugin.PromptTemplate(
        name="caption.en", lang="en", source=" what does the image describe?", target="{caption}"
    ),
}


TASK = plugin.Task(
    "caption", "describe an image (MUGE in Chinese, COCO-style in English)", generation="caption", metrics=("caption",)
)


@TASK.hook
def preprocess(record: dict, split: str, options: None) -> dict | None:
    """Training rows need a caption; evaluation rows keep every reference."""
    caption = str(record.get("caption", "")).strip()
    if split == "train" and not caption:
        return None
    return {**record, "caption": caption}


COMPONENTS = plugin.Components(
    prompts=PROMPTS.values(), readers=READERS, metrics=CAPTION_METRICS | CIDER_D_METRICS, task=TASK
)
COMPONENTS.install(globals())
