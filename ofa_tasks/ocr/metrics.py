"""OCR scores: exact-match accuracy (what OFA's evaluation reports) and 1 - normalised edit distance
(what its validation also logs), both on texts without spaces, x100."""

from __future__ import annotations

import Levenshtein

from ofa_core import plugin
from ofa_tasks.ocr.text import without_spaces

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@METRICS.add("ocr", "exact-match accuracy and 1 - normalised edit distance, spaces removed (x100)", example_score="ned")
class OcrScores(plugin.SummedMetric):
    """Totals: the exact matches and the normalised edit distances. A report row's `score` is 1 - the text's
    normalised edit distance, x100 (its mean is `ned`), `correct` an exact match (their share is `accuracy`)."""

    TOTALS = ("hits", "distance_sum")

    def __init__(self, options: plugin.NoOptions) -> None:
        super().__init__(options)

    def score(self, prediction: str, references: list[str]) -> tuple[dict[str, float], dict]:
        hypothesis = without_spaces(prediction)
        reference = without_spaces(references[0]) if references else ""
        longest = max(len(hypothesis), len(reference))
        # Two empty texts are equal (the official division would fail on them).
        distance = Levenshtein.distance(hypothesis, reference) / longest if longest else 0.0
        exact = hypothesis == reference
        return {"hits": int(exact), "distance_sum": distance}, {"score": 100 * (1 - distance), "correct": exact}

    def compute(self) -> dict[str, float]:
        ned = 100 * (1 - self.totals["distance_sum"] / self.count) if self.count else 0.0
        return {"accuracy": self.mean("hits"), "ned": ned}
