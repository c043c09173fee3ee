"""VQA soft accuracy (the prediction's reference confidence) and exact match with the best answer."""

from __future__ import annotations

import attrs

from ofa_core import plugin
from ofa_tasks.vqa.answers import decode

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@attrs.frozen
class VqaMetricOptions:
    """No options: answers are compared after stripping surrounding spaces, as OFA does."""


@METRICS.add("vqa", "soft VQA accuracy (answer confidence) and exact match, x100", example_score="vqa_acc")
class VqaAccuracy:
    """Sum-mergeable counts: soft score total, exact matches, examples."""

    def __init__(self, options: VqaMetricOptions) -> None:
        self.soft = 0.0
        self.exact = 0
        self.count = 0
        self.examples: list[dict] = []

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        for prediction, refs in zip(predictions, references):
            scored = dict(decode(reference) for reference in refs)
            answer = prediction.strip()
            self.soft += scored.get(answer, 0.0)
            best = max(scored, key=scored.get) if scored else None
            self.exact += int(answer == best)
            self.count += 1
            self.examples.append({"score": 100 * scored.get(answer, 0.0), "correct": answer == best})

    def state(self) -> dict:
        return {"soft": self.soft, "exact": self.exact, "count": self.count}

    def load_state(self, merged: dict) -> None:
        self.soft, self.exact, self.count = merged["soft"], merged["exact"], merged["count"]

    def example_scores(self) -> list[dict]:
        """Each answer's VQA score x100 (its mean is `vqa_acc`) and `correct`: it is the best-scored answer."""
        return list(self.examples)

    def compute(self) -> dict[str, float]:
        if not self.count:
            return {"vqa_acc": 0.0, "exact_match": 0.0}
        return {"vqa_acc": 100 * self.soft / self.count, "exact_match": 100 * self.exact / self.count}
