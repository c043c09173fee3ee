"""ofa plugin: visual grounding (RefCOCO-style), the box answered as `<bin_x0> <bin_y0> <bin_x1> <bin_y1>`.

Registers the `grounding` task with its prompts, a JSONL reader, a label-smoothed cross-entropy
loss and the Acc@0.5 metric. Importing this module stays light: torch is imported inside the
loss only when it runs.
"""

from __future__ import annotations

from ofa_core.hookspecs import hookimpl
from ofa_core.specs import LossSpec, MetricSpec, PromptTemplate, ReaderSpec, TaskSpec
from ofa_plugin_grounding.loss import LossOptions, build_loss
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
def ofa_register_losses(register):
    register("grounding_ce", LossSpec(
        options=LossOptions, build=build_loss, description="label-smoothed cross-entropy over the four box tokens"))


@hookimpl
def ofa_register_metrics(register):
    register("grounding_acc", MetricSpec(
        options=MetricOptions, build=build_metric, higher_is_better=True,
        description="Acc@IoU: share of predicted boxes whose IoU with the reference reaches the threshold"))


@hookimpl
def ofa_register_tasks(register):
    register("grounding", TaskSpec(
        prompts={"en": "grounding.en", "zh": "grounding.zh"}, reader="grounding_jsonl", loss="grounding_ce",
        metrics=("grounding_acc",), generation="grounding", preprocess=preprocess, postprocess=postprocess,
        description="locate the region a phrase describes (RefCOCO-style visual grounding)"))
