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


@METRICS.add("counting", "exact count accuracy and accuracy within one, x100", example_score="accuracy")
class CountingAccuracy(plugin.SummedMetric):
    """Totals: exact hits and hits within one."""

    TOTALS = ("exact", "within_one")

    def __init__(self, options: CountingMetricOptions) -> None:
        super().__init__(options)

    def score(self, prediction: str, references: list[str]) -> tuple[dict[str, float], dict]:
        predicted = parse_count(prediction)
        truths = [value for value in map(parse_count, references) if value is not None]
        if predicted is None or not truths:
            return {}, {"score": 0.0, "correct": False}
        exact = predicted in truths
        return {"exact": int(exact), "within_one": int(any(abs(predicted - truth) <= 1 for truth in truths))}, {
            "score": 100.0 * exact,
            "correct": exact,
        }

    def compute(self) -> dict[str, float]:
        return {"accuracy": self.mean("exact"), "within_one": self.mean("within_one")}
