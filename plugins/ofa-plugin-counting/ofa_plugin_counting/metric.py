"""Counting accuracy: exact, and within one (a near miss is still informative for counts)."""

from __future__ import annotations

import attrs

from ofa_core import plugin

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@attrs.frozen
class CountingMetricOptions:
    """No options."""


def parse_count(text: str) -> int | None:
    """'3' -> 3; None for anything that is not a whole number (a miss)."""
    text = text.strip()
    return int(text) if text.isdigit() else None


@METRICS.add("counting", "exact count accuracy and accuracy within one, x100")
class CountingAccuracy:
    """State: exact hits, hits within one, and examples; all three add across processes."""

    def __init__(self, options: CountingMetricOptions) -> None:
        self.exact = 0
        self.within_one = 0
        self.count = 0

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        for prediction, refs in zip(predictions, references, strict=True):
            predicted = parse_count(prediction)
            truths = [value for value in map(parse_count, refs) if value is not None]
            if predicted is not None and truths:
                self.exact += predicted in truths
                self.within_one += any(abs(predicted - truth) <= 1 for truth in truths)
            self.count += 1

    def state(self) -> dict:
        return {"exact": self.exact, "within_one": self.within_one, "count": self.count}

    def load_state(self, merged: dict) -> None:
        self.exact, self.within_one, self.count = int(merged["exact"]), int(merged["within_one"]), int(merged["count"])

    def compute(self) -> dict[str, float]:
        if not self.count:
            return {"accuracy": 0.0, "within_one": 0.0}
        return {"accuracy": 100 * self.exact / self.count, "within_one": 100 * self.within_one / self.count}
