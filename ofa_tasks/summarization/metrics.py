"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Porter-stemmed), x100, from Google's `rouge-score`, the scorer
OFA's Gigaword evaluation wraps.

The official script reports the bootstrap aggregator's middle value; this reports the plain mean over
examples, which the bootstrap estimates and which merges exactly across processes.
"""

from __future__ import annotations

import attrs

from ofa_core import plugin

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@attrs.frozen
class RougeOptions:
    """`stemmer`: Porter-stem words before matching (the official evaluation does)."""

    stemmer: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


@METRICS.add(
    "rouge", "ROUGE-1/2/L F-measure (rouge-score, Porter-stemmed), mean over examples, x100", example_score="rougeL"
)
class Rouge:
    """State: the F-measure sums of each ROUGE type and the count; all add up across processes."""

    def __init__(self, options: RougeOptions) -> None:
        from rouge_score import rouge_scorer

        self.scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=options.stemmer)
        self.sums = dict.fromkeys(ROUGE_TYPES, 0.0)
        self.count = 0
        self.examples: list[dict] = []

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        for prediction, refs in zip(predictions, references):
            scores = self.scorer.score(refs[0] if refs else "", prediction)  # (target, prediction)
            for name in ROUGE_TYPES:
                self.sums[name] += scores[name].fmeasure
            self.count += 1
            self.examples.append(
                {
                    "score": 100 * scores["rougeL"].fmeasure,
                    **{name: 100 * scores[name].fmeasure for name in ROUGE_TYPES},
                }
            )

    def state(self) -> dict:
        return {**self.sums, "count": self.count}

    def load_state(self, merged: dict) -> None:
        self.sums = {name: float(merged[name]) for name in ROUGE_TYPES}
        self.count = int(merged["count"])

    def example_scores(self) -> list[dict]:
        """Each summary's ROUGE-L F x100 as `score` (its mean is `rougeL`), and its ROUGE-1/2/L by name."""
        return list(self.examples)

    def compute(self) -> dict[str, float]:
        return {name: 100 * total / self.count if self.count else 0.0 for name, total in self.sums.items()}
