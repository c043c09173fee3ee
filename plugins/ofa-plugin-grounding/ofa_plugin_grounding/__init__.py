"""ofa plugin: visual grounding (RefCOCO-style), the box answered as `<bin_x0> <bin_y0> <bin_x1> <bin_y1>`.

Registers the `grounding` task with its prompts, a JSONL reader and the Acc@0.5 metric; the loss
is the core's `label_smoothed_cross_entropy`. Importing this module does not import torch.
"""

from __future__ import annotations

from ofa_core.plugin import MetricSpec, PromptTemplate, ReaderSpec, TaskSpec, hookimpl
from ofa_plugin_grounding.metric import MetricOptions, build_metric
from ofa_plugin_grounding.reader import ReaderOptions, open_split
from ofa_plugin_grounding.task import postprocess, preprocess

__version__ = "0.1.0"


@hookimpl
def ofa_register_prompts(register):
    register("grounding.en", PromptTemplate(
        name="grounding.en", lang="en", source=' which region does the text " {text} " describe?', target="{region}"))
    register("grounding.zh", PromptTemplate(
        name="grounding.zh", lang="zh", source='这段文字" {text} "描述的是哪个区域？', target="{region}"))


@hookimpl
def ofa_register_readers(register):
    register("grounding_jsonl", ReaderSpec(
        options=ReaderOptions, open=open_split,
        description="JSON lines: image (path or base64), text, box [x0, y0, x1, y1] in pixels"))


@hookimpl
def ofa_register_metrics(register):
    register("grounding_acc", MetricSpec(
        options=MetricOptions, build=build_metric, higher_is_better=True,
        description="Acc@IoU: share of predicted boxes whose IoU with the reference reaches the threshold"))


@hookimpl
def ofa_register_tasks(register):
    register("grounding", TaskSpec(
        prompts={"en": "grounding.en", "zh": "grounding.zh"}, reader="grounding_jsonl", loss="label_smoothed_cross_entropy",
        metrics=("grounding_acc",), generation="grounding", preprocess=preprocess, postprocess=postprocess,
        description="locate the region a phrase describes (RefCOCO-style visual grounding)"))
