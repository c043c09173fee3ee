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
class Rouge(plugin.SummedMetric):
    """Totals: the F-measure of each ROUGE type. A report row's `score` is the summary's ROUGE-L F x100 (its mean is
    `rougeL`), with its ROUGE-1/2/L by name."""

    TOTALS = ROUGE_TYPES

    def __init__(self, options: RougeOptions) -> None:
        from rouge_score import rouge_scorer

        super().__init__(options)
        self.scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=options.stemmer)

    def score(self, prediction: str, references: list[str]) -> tuple[dict[str, float], dict]:
        scores = self.scorer.score(references[0] if references else "", prediction)  # (target, prediction)
        measures = {name: scores[name].fmeasure for name in ROUGE_TYPES}
        return measures, {"score": 100 * measures["rougeL"], **{name: 100 * value for name, value in measures.items()}}

    def compute(self) -> dict[str, float]:
        return {name: self.mean(name) for name in ROUGE_TYPES}
