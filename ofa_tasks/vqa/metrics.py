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
class VqaAccuracy(plugin.SummedMetric):
    """Totals: the soft score and the exact matches. A report row's `score` is the answer's VQA score x100 (its
    mean is `vqa_acc`), `correct` whether it is the best-scored answer."""

    TOTALS = ("soft", "exact")

    def __init__(self, options: VqaMetricOptions) -> None:
        super().__init__(options)

    def score(self, prediction: str, references: list[str]) -> tuple[dict[str, float], dict]:
        scored = dict(decode(reference) for reference in references)
        answer = prediction.strip()
        best = max(scored, key=scored.get) if scored else None
        soft = scored.get(answer, 0.0)
        return {"soft": soft, "exact": int(answer == best)}, {"score": 100 * soft, "correct": answer == best}

    def compute(self) -> dict[str, float]:
        return {"vqa_acc": self.mean("soft"), "exact_match": self.mean("exact")}
