"""The GLUE datasets as OFA's fine-tunes read them: prompt, label words and file layout of each.

Every answer is one word the model writes after the whole prompt (OFA's `--prompt-type src`); the raw
labels of the official TSVs map onto these words, in the order of each task's `ans2label_dict`.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class GlueDataset:
    """One dataset: the record fields its prompt names, the prompt, raw label -> answer word, and the official
    layout."""

    fields: tuple[str, ...]
    """Text fields, in the order of the official TSV's text columns."""
    prompt: str
    """The official encoder text, `str.format` over `fields` (leading space included: GPT-2 BPE sees it)."""
    labels: dict[str, str]
    """Raw label of the data -> answer word."""
    answers: tuple[str, ...]
    """The answer words in the order of the official `ans2label_dict`."""
    columns: tuple[int, ...]
    """The official `selected_cols`: the text columns, then the label column."""


GLUE: dict[str, GlueDataset] = {
    "sst2": GlueDataset(
        ("sentence",),
        ' is the sentiment of text " {sentence} " positive or negative?',
        {"0": "negative", "1": "positive"},
        ("negative", "positive"),
        (0, 1),
    ),
    "cola": GlueDataset(
        ("sentence",),
        ' is the text " {sentence} " grammatically correct?',
        {"0": "no", "1": "yes"},
        ("no", "yes"),
        (1, 2),
    ),
    # OFA's MNLI files code neutral 0, entailment 1, contradiction 2; the GLUE words are accepted too.
    "mnli": GlueDataset(
        ("sentence1", "sentence2"),
        ' can text1 " {sentence1} " imply text2 " {sentence2} "?',
        {"0": "maybe", "1": "yes", "2": "no", "neutral": "maybe", "entailment": "yes", "contradiction": "no"},
        ("maybe", "yes", "no"),
        (0, 1, 2),
    ),
    "mrpc": GlueDataset(
        ("sentence1", "sentence2"),
        ' does text1 " {sentence1} " and text2 " {sentence2} " have the same semantics?',
        {"0": "no", "1": "yes"},
        ("no", "yes"),
        (0, 1, 2),
    ),
    "qnli": GlueDataset(
        ("question", "sentence"),
        ' does " {sentence} " contain the answer to question " {question} "?',
        {"0": "no", "not_entailment": "no", "1": "yes", "entailment": "yes"},
        ("no", "yes"),
        (1, 2, 3),
    ),
    "qqp": GlueDataset(
        ("question1", "question2"),
        ' is question " {question1} " and question " {question2} " equivalent?',
        {"0": "no", "1": "yes"},
        ("no", "yes"),
        (3, 4, 5),
    ),
    "rte": GlueDataset(
        ("sentence1", "sentence2"),
        ' can text1 " {sentence1} " imply text2 " {sentence2} "?',
        {"not_entailment": "no", "entailment": "yes"},
        ("no", "yes"),
        (1, 2, 3),
    ),
}

OFFICIAL_MAX_WORDS = 512
"""`--max-src-length` of the official GLUE scripts, which the datasets apply to each text as a word limit."""


def clean(text: str, max_words: int = OFFICIAL_MAX_WORDS) -> str:
    """Lower case, whitespace runs as one space, at most `max_words` words (each text, as the official datasets)."""
    return " ".join(text.lower().strip().split()[:max_words])


def answer_word(dataset: GlueDataset, raw: str) -> str | None:
    """The answer word of a raw label (an official code, a GLUE label name, or the word itself); None if unknown."""
    raw = raw.strip()
    return dataset.labels.get(raw) or (raw if raw in dataset.answers else None)
