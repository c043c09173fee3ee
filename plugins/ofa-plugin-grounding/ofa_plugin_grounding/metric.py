"""Acc@IoU (Acc@0.5 by default): a prediction counts when its box overlaps a reference box enough."""

from __future__ import annotations

import attrs


@attrs.frozen
class MetricOptions:
    iou_threshold: float = attrs.field(default=0.5, validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)])
    """Smallest IoU that counts as a hit; 0.5 is the RefCOCO convention."""


def parse_box(text: str) -> tuple[float, float, float, float] | None:
    """'x0 y0 x1 y1' -> floats; None for anything else (an unparseable prediction is a miss)."""
    parts = text.replace(",", " ").split()
    if len(parts) != 4:
        return None
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        return None
    return x0, y0, x1, y1


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class GroundingAccuracy:
    """State: hit count, example count and IoU sum; all three add across processes."""

    def __init__(self, options: MetricOptions) -> None:
        self.threshold = options.iou_threshold
        self.hits = 0
        self.count = 0
        self.iou_sum = 0.0

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        for prediction, refs in zip(predictions, references, strict=True):
            box = parse_box(prediction)
            best = max((iou(box, ref) for ref in map(parse_box, refs) if ref), default=0.0) if box else 0.0
            self.hits += best >= self.threshold
            self.iou_sum += best
            self.count += 1

    def state(self) -> dict:
        return {"hits": self.hits, "count": self.count, "iou_sum": self.iou_sum}

    def load_state(self, merged: dict) -> None:
        self.hits, self.count, self.iou_sum = int(merged["hits"]), int(merged["count"]), float(merged["iou_sum"])

    def compute(self) -> dict[str, float]:
        if not self.count:
            return {f"acc@{self.threshold:g}": 0.0, "miou": 0.0}
        return {f"acc@{self.threshold:g}": self.hits / self.count, "miou": self.iou_sum / self.count}


def build_metric(options: MetricOptions) -> GroundingAccuracy:
    return GroundingAccuracy(options)
