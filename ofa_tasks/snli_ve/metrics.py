"""SNLI-VE accuracy: the share of predictions equal to the label (OFA's `snli_score`), x100."""

from __future__ import annotations

import attrs

from ofa_core import plugin

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@attrs.frozen
class SnliVeMetricOptions:
    """No options: the prediction and the label are compared after stripping surrounding spaces."""


@METRICS.add("snli_ve", "accuracy of yes/no/maybe against the label (OFA's snli_score), x100", example_score="accuracy")
class SnliVeAccuracy:
    """Sum-mergeable counts of hits and examples."""

    def __init__(self, options: SnliVeMetricOptions) -> None:
        self.hits = 0
        self.count = 0
        self.examples: list[dict] = []

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        for prediction, refs in zip(predictions, references):
            right = bool(refs) and prediction.strip() == refs[0].strip()
            self.hits += int(right)
            self.count += 1
            self.examples.append({"score": 100.0 * right, "correct": right})

    def state(self) -> dict:
        return {"hits": self.hits, "count": self.count}

    def load_state(self, merged: dict) -> None:
        self.hits, self.count = merged["hits"], merged["count"]

    def example_scores(self) -> list[dict]:
        """100 for the right label, else 0 (the mean is `accuracy`), with `correct`."""
        return list(self.examples)

    def compute(self) -> dict[str, float]:
        return {"accuracy": 100 * self.hits / self.count if self.count else 0.0}
