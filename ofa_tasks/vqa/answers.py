"""Answers with confidences, in OFA's `conf|!+answer` form, question normalisation and object tags.

OFA's VQA data scores each reference answer (`0.6|!+no&&1.0|!+yes`); soft accuracy credits a
prediction with its answer's confidence.  References travel to the metric in that same form so
the score needs nothing but strings.
"""

from __future__ import annotations

import re

SEPARATOR = "|!+"


def encode(answer: str, confidence: float) -> str:
    """'no', 0.6 -> '0.6|!+no'; a fully confident answer stays plain, so predictions files and samples read
    naturally."""
    return answer if confidence == 1.0 else f"{confidence:g}{SEPARATOR}{answer}"


def decode(reference: str) -> tuple[str, float]:
    """'0.6|!+no' -> ('no', 0.6); a plain answer counts with confidence 1."""
    confidence, found, answer = reference.partition(SEPARATOR)
    if not found:
        return reference.strip(), 1.0
    return answer.strip(), float(confidence)


def parse_official(field: str) -> dict[str, float]:
    """The official TSV answers column 'conf|!+ans&&conf|!+ans' -> {answer: confidence}."""
    scored: dict[str, float] = {}
    for item in filter(None, field.split("&&")):
        answer, confidence = decode(item)
        scored[answer] = max(confidence, scored.get(answer, 0.0))
    return scored


def normalise_question(question: str, max_words: int = 80) -> str:
    """OFA's English question clean-up: lower case, no leading punctuation, '-' and '/' as spaces, ends with '?'."""
    text = question.lower().lstrip(",.!?*#:;~").replace("-", " ").replace("/", " ")
    text = re.sub(r"\s{2,}", " ", text).rstrip("\n").strip()
    words = text.split(" ")[:max_words]
    text = " ".join(words)
    return text if text.endswith("?") else text + "?"


def object_tags(objects: str | list | tuple | None, max_objects: int) -> str:
    """OFA's `--add-object` suffix: ' object: ' + the first `max_objects` labels joined by spaces.

    A row without detections still gets ' object: ', as the official data does with an empty column.
    The official TSV column is 'a&&b'; a list is taken as the labels themselves.
    """
    if objects is None:
        labels: list[str] = []
    elif isinstance(objects, str):
        labels = objects.strip().split("&&")
    else:
        labels = [str(label) for label in objects]
    return " object: " + " ".join(labels[:max_objects])
