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
class SnliVeAccuracy(plugin.SummedMetric):
    """Totals: the hits. A report row's `score` is 100 for the right label, else 0 (the mean is `accuracy`)."""

    TOTALS = ("hits",)

    def __init__(self, options: SnliVeMetricOptions) -> None:
        super().__init__(options)

    def score(self, prediction: str, references: list[str]) -> tuple[dict[str, float], dict]:
        right = bool(references) and prediction.strip() == references[0].strip()
        return {"hits": int(right)}, {"score": 100.0 * right, "correct": right}

    def compute(self) -> dict[str, float]:
        return {"accuracy": self.mean("hits")}
