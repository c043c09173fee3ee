"""Acc@0.5 as OFA scores RefCOCO, and mean IoU.

A hit needs IoU >= the threshold and an intersection of positive width and height, with IoU
computed as the official evaluation does (`inter / (area_pred + area_ref - inter + 1e-6)`), so
scores compare with published numbers. A prediction that is no box counts as a miss with IoU 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ofa_core import plugin

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


Box = tuple[float, float, float, float]


@attrs.frozen
class GroundingMetricOptions:
    """`iou_threshold`: the smallest IoU that counts as a hit (0.5, the RefCOCO convention)."""

    iou_threshold: float = attrs.field(
        default=0.5, converter=float, validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)]
    )


def parse_box(value: Sequence[float] | str | None) -> Box | None:
    """[x0, y0, x1, y1] or 'x0 y0 x1 y1' (spaces or commas) -> four finite floats; None for anything else."""
    if value is None:
        return None
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    if len(parts) != 4:
        return None
    try:
        values = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        return None
    return values if all(math.isfinite(value) for value in values) else None  # type: ignore[return-value]


def overlap(prediction: Box, reference: Box) -> tuple[float, bool]:
    """(IoU, whether the intersection has positive width and height), with the official formula."""
    width = min(prediction[2], reference[2]) - max(prediction[0], reference[0])
    height = min(prediction[3], reference[3]) - max(prediction[1], reference[1])
    area_prediction = (prediction[2] - prediction[0]) * (prediction[3] - prediction[1])
    area_reference = (reference[2] - reference[0]) * (reference[3] - reference[1])
    intersection = width * height
    return intersection / (area_prediction + area_reference - intersection + 1e-6), width > 0 and height > 0


@METRICS.add(
    "grounding", "Acc@0.5 (IoU >= 0.5, positive intersection, as OFA) and mean IoU, x100", example_score="miou"
)
class GroundingAccuracy(plugin.SummedMetric):
    """Totals: the hits and the IoUs. A report row's `score` is the box's IoU x100 (its mean is `miou`), `correct` a
    hit at the threshold (their share is Acc@t)."""

    TOTALS = ("hits", "iou_sum")

    def __init__(self, options: GroundingMetricOptions) -> None:
        super().__init__(options)
        self.threshold = options.iou_threshold

    def score(self, prediction, references: list) -> tuple[dict[str, float], dict]:
        box = parse_box(prediction)
        best, hit = 0.0, False
        for reference in filter(None, map(parse_box, references)):
            if box is None:
                break
            iou, intersects = overlap(box, reference)
            if intersects:
                best, hit = max(best, iou), hit or iou >= self.threshold
        return {"hits": int(hit), "iou_sum": best}, {"score": 100 * best, "correct": hit}

    def compute(self) -> dict[str, float]:
        return {f"acc@{self.threshold:g}": self.mean("hits"), "miou": self.mean("iou_sum")}
