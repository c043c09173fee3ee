"""The `vqa` task: a question about an image, answered in a few words; soft VQA accuracy and exact match.

English questions get OFA's clean-up and its prompt `" {question}"` (leading space); Chinese
questions are used as written.
"""

from __future__ import annotations

from ofa_core.hookspecs import hookimpl
from ofa_core.specs import MetricSpec, PromptTemplate, ReaderSpec, TaskSpec
from ofa_tasks.vqa.answers import normalise_question
from ofa_tasks.vqa.metrics import VqaAccuracy, VqaMetricOptions
from ofa_tasks.vqa.readers import VqaJsonlOptions, VqaTsvOptions, read_vqa_jsonl, read_vqa_tsv

PROMPTS = {
    "en": PromptTemplate(name="vqa.en", lang="en", source=" {question_en}", target="{answer}"),
    "zh": PromptTemplate(name="vqa.zh", lang="zh", source="{question}", target="{answer}"),
}


def preprocess(record: dict, split: str, options: None) -> dict | None:
    if split == "train" and not record.get("answer"):
        return None
    return {**record, "question_en": normalise_question(record["question"])}


@hookimpl
def ofa_register_prompts(register):
    for template in PROMPTS.values():
        register(template.name, template)


@hookimpl
def ofa_register_readers(register):
    register("vqa_jsonl", ReaderSpec(options=VqaJsonlOptions, open=read_vqa_jsonl,
                                     description="JSON lines: image (path, base64 or TSV id), question, answers"))
    register("vqa_tsv", ReaderSpec(options=VqaTsvOptions, open=read_vqa_tsv,
                                   description="official OFA VQA TSV (question-id, image-id, question, answers, objects, image)"))


@hookimpl
def ofa_register_metrics(register):
    register("vqa", MetricSpec(options=VqaMetricOptions, build=VqaAccuracy, higher_is_better=True,
                               description="soft VQA accuracy (answer confidence) and exact match, x100"))


@hookimpl
def ofa_register_tasks(register):
    register("vqa", TaskSpec(
        prompts={"en": "vqa.en", "zh": "vqa.zh"}, reader="vqa_jsonl", loss="label_smoothed_cross_entropy",
        metrics=("vqa",), generation="vqa", preprocess=preprocess,
        description="answer a question about an image (open-ended generation)"))
