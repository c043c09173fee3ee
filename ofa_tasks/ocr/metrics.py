"""OCR scores: exact-match accuracy (what OFA's evaluation reports) and 1 - normalised edit distance
(what its validation also logs), both on texts without spaces, x100."""

from __future__ import annotations

import Levenshtein

from ofa_core import plugin
from ofa_tasks.ocr.text import without_spaces

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@METRICS.add("ocr", "exact-match accuracy and 1 - normalised edit distance, spaces removed (x100)", example_score="ned")
class OcrScores:
    """State: hits, the normalised-distance sum and the count; all add up across processes."""

    def __init__(self, options: plugin.NoOptions) -> None:
        self.hits = 0
        self.distance_sum = 0.0
        self.count = 0
        self.examples: list[dict] = []

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        for prediction, refs in zip(predictions, references):
            hypothesis = without_spaces(prediction)
            reference = without_spaces(refs[0]) if refs else ""
            longest = max(len(hypothesis), len(reference))
            self.hits += hypothesis == reference
            # Two empty texts are equal (the official division would fail on them).
            distance = Levenshtein.distance(hypothesis, reference) / longest if longest else 0.0
            self.distance_sum += distance
            self.count += 1
            self.examples.append({"score": 100 * (1 - distance), "correct": hypothesis == reference})

    def state(self) -> dict:
        return {"hits": self.hits, "distance_sum": self.distance_sum, "count": self.count}

    def load_state(self, merged: dict) -> None:
        self.hits, self.distance_sum, self.count = (
            int(merged["hits"]),
            float(merged["distance_sum"]),
            int(merged["count"]),
        )

    def example_scores(self) -> list[dict]:
        """Each text's 1 - normalised edit distance x100 (its mean is `ned`) and `correct`: an exact match (their
        share is `accuracy`)."""
        return list(self.examples)

    def compute(self) -> dict[str, float]:
        if not self.count:
            return {"accuracy": 0.0, "ned": 0.0}
        return {"accuracy": 100 * self.hits / self.count, "ned": 100 * (1 - self.distance_sum / self.count)}
