"""One card per example, whatever the task: read from the row's shape, since the core knows no task.

A row whose prediction or references are boxes (four numbers) gets its boxes drawn over the image; a row with a
`ranking` (a closed set) shows its top answers with their probabilities; every row shows its prompt text (the
question, or the whole input of a text-only task), prediction, references and per-example score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ofa_core.report.thumbnails import Thumbnail

TOP_ANSWERS = 5

Box = tuple[float, float, float, float]


@attrs.frozen
class Card:
    """What the page shows of one example."""

    id: str
    score: float | None
    correct: bool | None
    prompt: str
    prediction: str
    references: tuple[str, ...]
    answers: tuple[tuple[str, float], ...]
    """The closed set's best answers, each with its probability among all answers (softmax of summed log-probs)."""
    image: Thumbnail | None
    has_image: bool
    """Whether the record had an image at all (a text-only task has none; a card with one that failed says so)."""
    predicted_box: Box | None
    """The boxes as drawn: corners ordered (the prediction and references show the numbers as the row has them)."""
    reference_boxes: tuple[Box, ...]

    @property
    def search_text(self) -> str:
        """What the page's filter matches, lower-cased: id, prompt, prediction and references."""
        return " ".join((self.id, self.prompt, self.prediction, *self.references)).lower()


def as_box(value: Any) -> Box | None:
    """[x0, y0, x1, y1] or 'x0 y0 x1 y1' (spaces or commas) as four finite floats; None for anything else."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    try:
        box = tuple(float(part) for part in value)
    except (TypeError, ValueError):
        return None
    return box if all(math.isfinite(part) for part in box) else None  # type: ignore[return-value]


def drawn(box: Box) -> Box:
    """The box as a rectangle to draw: its corners ordered, since a model may give the right corner first and SVG
    refuses a negative width (the page would log an error and draw nothing)."""
    x0, y0, x1, y1 = box
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def probabilities(ranking: Sequence[Mapping[str, Any]], top: int = TOP_ANSWERS) -> tuple[tuple[str, float], ...]:
    """The `top` answers of a ranking (answer, summed log-probability) with their softmax over the whole ranking."""
    if not ranking:
        return ()
    scores = [float(entry["score"]) for entry in ranking]
    peak = max(scores)
    weights = [math.exp(score - peak) for score in scores]
    total = sum(weights)
    pairs = sorted(zip((str(entry["answer"]) for entry in ranking), weights), key=lambda pair: -pair[1])
    return tuple((answer, weight / total) for answer, weight in pairs[:top])


def shown(value: Any) -> str:
    """A prediction or reference as text (a box as its numbers rounded to a pixel)."""
    box = as_box(value) if not isinstance(value, str) else None
    if box is not None:
        return "[" + ", ".join(f"{part:.0f}" for part in box) + "]"
    return "(none)" if value is None else str(value)


def card(row: Mapping[str, Any], prompt: str, image: Thumbnail | None, has_image: bool) -> Card:
    """The card of a predictions row, its record's prompt text and its image's thumbnail."""
    references = list(row.get("references") or ())
    predicted = as_box(row.get("prediction"))
    reference_boxes = tuple(filter(None, map(as_box, references)))
    boxes = image is not None and (predicted is not None or bool(reference_boxes))
    score = row.get("score")
    return Card(
        id=str(row.get("id")),
        score=float(score) if isinstance(score, (int, float)) else None,
        correct=row["correct"] if isinstance(row.get("correct"), bool) else None,
        prompt=prompt,
        prediction=shown(row.get("prediction")),
        references=tuple(map(shown, references)),
        answers=probabilities(row.get("ranking") or ()),
        image=image,
        has_image=has_image,
        predicted_box=drawn(predicted) if boxes and predicted is not None else None,
        reference_boxes=tuple(map(drawn, reference_boxes)) if boxes else (),
    )
