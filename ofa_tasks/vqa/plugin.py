"""The `vqa` task: a question about an image, answered in a few words; soft VQA accuracy and exact match.

English questions get OFA's clean-up and its prompt `" {question}"` (leading space); Chinese
questions are used as written. Answers are generated freely, or, given a candidate answer list,
picked from it (OFA's closed-set VQA: every candidate scored, or a trie-constrained beam search).
The options `add_object`, `answer_space` and `confidence_weight`, with the recipe's `task.prompt_type`
'prev_output', give OFA's fine-tuned English VQA form (recipes/official/vqa.json).
"""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_tasks.vqa.answers import normalise_question, object_tags
from ofa_tasks.vqa.metrics import METRICS
from ofa_tasks.vqa.readers import READERS

PROMPTS = {
    "en": plugin.PromptTemplate(name="vqa.en", lang="en", source=" {question_en}", target="{answer}"),
    "zh": plugin.PromptTemplate(name="vqa.zh", lang="zh", source="{question}", target="{answer}"),
}


@attrs.frozen(field_transformer=plugin.closed_set_fields_last)
class VqaOptions(plugin.ClosedSetOptions):
    """`task.options` of `vqa`: without answers it is open-ended; with them, closed-set
    (`inference`, `top_k`, `restrict_loss`: see `ClosedSetOptions`)."""

    answers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Candidate answers, listed in the recipe."""
    answers_file: str | None = plugin.path_option()
    """Candidate answers in a file: one per line (.txt), a JSON list / object keyed by answer (.json, e.g. OFA's
    ans2label exported), or `answer<TAB>index` rows (.tsv); candidates keep the file's order."""
    add_object: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """OFA's `--add-object`: the English question is followed by ' object: ' and the record's `objects`."""
    max_object_length: int = attrs.field(
        default=30, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)]
    )
    """Object labels kept with `add_object` (OFA's `--max-object-length`)."""
    answer_space: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Targets and candidates are ' ' + answer, the tokens OFA's English checkpoints learn and score (GPT-2 BPE
    tokens differ with the space); predictions are reported without it."""
    confidence_weight: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Scale each record's loss by its trained answer's confidence (OFA's `conf`)."""


TASK = plugin.Task(
    "vqa", "answer a question about an image (open-ended, or picked from candidate answers)", generation="vqa"
)


@TASK.hook
def closed_set(options: VqaOptions) -> plugin.ClosedSet | None:
    if options.answers and options.answers_file:
        raise plugin.OFAError("task.options: give either answers or answers_file, not both")
    if options.answers_file:
        answers = plugin.read_answer_list(options.answers_file, "task.options.answers_file")
    elif options.answers:
        answers = options.answers
    else:
        if options.restrict_loss or options.top_k > 1 or options.inference != "rank":
            raise plugin.OFAError(
                "task.options: inference, top_k and restrict_loss need candidate answers; add answers or answers_file"
            )
        return None
    return options.closed_set(tuple(" " + answer for answer in answers) if options.answer_space else answers)


@TASK.hook
def preprocess(record: dict, split: str, options: VqaOptions) -> dict | None:
    """`question_en` (with its object tags under `add_object`), and the target and loss weight the options ask for."""
    if split == "train" and not record.get("answer"):
        return None
    if not isinstance(record.get("question"), str):
        raise plugin.OFAError(
            f"record {record.get('id')!r}: no 'question' text; the reader must give one "
            f"(with ofa predict: --field question='...' or a 'question' TSV column)"
        )
    question = normalise_question(record["question"])
    if options.add_object:
        question += object_tags(record.get("objects"), options.max_object_length)
    prepared = {**record, "question_en": question}
    if options.answer_space and record.get("answer"):
        prepared["answer"] = " " + record["answer"]
    if options.confidence_weight:
        prepared["loss_weight"] = float(record.get("confidence", 1.0))
    return prepared


@TASK.hook
def postprocess(text: str, record: dict, options: VqaOptions) -> str:
    """The answer without the space `answer_space` puts before candidates."""
    return text.strip()


COMPONENTS = plugin.Components(prompts=PROMPTS.values(), readers=READERS, metrics=METRICS, task=TASK)
COMPONENTS.install(globals())
