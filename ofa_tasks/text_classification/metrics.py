"""GLUE scores as OFA's tasks log them: accuracy, and on request F1 (MRPC, QQP) and Matthews correlation
(CoLA) of the positive answer, all x100."""

from __future__ import annotations

import math

import attrs

from ofa_core import plugin

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@attrs.frozen
class GlueMetricOptions:
    """Which scores besides accuracy, and the answer they count as positive."""

    f1: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """F1 of the positive answer (the official MRPC and QQP tasks report it)."""
    mcc: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Matthews correlation coefficient (the official CoLA task reports it)."""
    positive: str = attrs.field(default="yes", validator=attrs.validators.instance_of(str))
    """The positive answer of F1 and MCC ('yes' in every official binary task)."""


@METRICS.add(
    "glue",
    "accuracy, and on request F1 and Matthews correlation of the positive answer (x100)",
    example_score="accuracy",
)
class GlueScores(plugin.SummedMetric):
    """Totals: the hits and the confusion counts of the positive answer. A report row's `score` is 100 for the right
    answer, else 0 (the mean is `accuracy`; F1 and MCC are not means)."""

    TOTALS = ("hits", "tp", "fp", "tn", "fn")

    def __init__(self, options: GlueMetricOptions) -> None:
        super().__init__(options)

    def score(self, prediction: str, references: list[str]) -> tuple[dict[str, float], dict]:
        right = prediction in references
        kind = ("t" if right else "f") + ("p" if prediction == self.options.positive else "n")
        return {"hits": int(right), kind: 1}, {"score": 100.0 * right, "correct": right}

    def compute(self) -> dict[str, float]:
        c = self.totals
        scores = {"accuracy": self.mean("hits")}
        if self.options.f1:
            denominator = 2 * c["tp"] + c["fp"] + c["fn"]
            scores["f1"] = 100 * 2 * c["tp"] / denominator if denominator else 0.0
        if self.options.mcc:
            # Zero when a margin is empty (e.g. every prediction the same), where the official formula divides by zero.
            denominator = math.sqrt(
                (c["tp"] + c["fp"]) * (c["tp"] + c["fn"]) * (c["tn"] + c["fp"]) * (c["tn"] + c["fn"])
            )
            scores["mcc"] = 100 * (c["tp"] * c["tn"] - c["fp"] * c["fn"]) / denominator if denominator else 0.0
        return scores
