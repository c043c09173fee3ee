"""The `vqa` task: a question about an image, answered in a few words; soft VQA accuracy and exact match.

English questions get OFA's clean-up and its prompt `" {question}"` (leading space); Chinese
questions are used as written. Answers are generated freely, or, given a candidate answer list,
picked from it (OFA's closed-set VQA: every candidate scored, or a trie-constrained beam search).
"""

from __future__ import annotations

import attrs

from ofa_core.plugin.answer_lists import read_answer_list
from ofa_core.model.errors import OFAError
from ofa_core.plugin.hooks import hookimpl
from ofa_core.plugin.specs import (
    ClosedSet,
    ClosedSetOptions,
    MetricSpec,
    PromptTemplate,
    ReaderSpec,
    TaskSpec,
    closed_set_fields_last,
    path_option,
)
from ofa_tasks.vqa.answers import normalise_question
from ofa_tasks.vqa.metrics import VqaAccuracy, VqaMetricOptions
from ofa_tasks.vqa.readers import VqaJsonlOptions, VqaTsvOptions, read_vqa_jsonl, read_vqa_tsv

PROMPTS = {
    "en": PromptTemplate(name="vqa.en", lang="en", source=" {question_en}", target="{answer}"),
    "zh": PromptTemplate(name="vqa.zh", lang="zh", source="{question}", target="{answer}"),
}


@attrs.frozen(field_transformer=closed_set_fields_last)
class VqaOptions(ClosedSetOptions):
    """`task.options` of `vqa`: without answers it is open-ended; with them, closed-set
    (`inference`, `top_k`, `restrict_loss`: see `ClosedSetOptions`)."""

    answers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Candidate answers, listed in the recipe."""
    answers_file: str | None = path_option()
    """Candidate answers in a file: one per line (.txt), or a JSON list / object keyed by answer (.json)."""


def closed_set(options: VqaOptions) -> ClosedSet | None:
    if options.answers and options.answers_file:
        raise OFAError("task.options: give either answers or answers_file, not both")
    if options.answers_file:
        answers = read_answer_list(options.answers_file, "task.options.answers_file")
    elif options.answers:
        answers = options.answers
    else:
        if options.restrict_loss or options.top_k > 1 or options.inference != "rank":
            raise OFAError("task.options: inference, top_k and restrict_loss need candidate answers; "
                           "add answers or answers_file")
        return None
    return options.closed_set(answers)


def preprocess(record: dict, split: str, options: VqaOptions) -> dict | None:
    if split == "train" and not record.get("answer"):
        return None
    if not isinstance(record.get("question"), str):
        raise OFAError(f"record {record.get('id')!r}: no 'question' text; the reader must give one "
                       f"(with ofa predict: --field question='...' or a 'question' TSV column)")
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
        metrics=("vqa",), generation="vqa", options=VqaOptions, preprocess=preprocess, closed_set=closed_set,
        description="answer a question about an image (open-ended, or picked from candidate answers)"))
