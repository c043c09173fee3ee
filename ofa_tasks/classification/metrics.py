"""Classification scores: accuracy, top-k accuracy, macro-F1 and per-class precision/recall/F1/support.

The state is the list of (prediction, label) pairs and, for top-k, whether each example's label
is among its ranked answers: lists concatenate across processes, so per-class counts and F1 are computed
once, on everything. Percentages are x100, as the other built-in metrics report them.
"""

from __future__ import annotations

from collections import Counter

import attrs

from ofa_core import plugin

METRICS = plugin.Metrics()
"""The metrics this module declares, each on its class."""


@attrs.frozen
class ClassificationMetricOptions:
    """`per_class`: also report `class/<label>/{precision,recall,f1,support}` (4 keys per label seen)."""

    per_class: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


def _label(references: list[str], index: int) -> str:
    if not references:
        raise plugin.OFAError(
            f"example {index} of the batch has no reference label; evaluate a split whose records have labels"
        )
    return references[0]


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@METRICS.add(
    "classification",
    "accuracy, top-k accuracy, macro-F1 and per-class precision/recall/F1/support (x100)",
    example_score="accuracy",
)
class ClassificationScores:
    """Accuracy from `update`; `top{k}_accuracy` from `update_rankings` (k = the ranking length)."""

    def __init__(self, options: ClassificationMetricOptions) -> None:
        self.per_class = options.per_class
        self.predictions: list[str] = []
        self.labels: list[str] = []
        self.top_k_hits: list[int] = []
        self.ranking_lengths: list[int] = []

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        self.predictions += [prediction.strip() for prediction in predictions]
        self.labels += [_label(refs, index) for index, refs in enumerate(references)]

    def update_rankings(self, rankings: list[list[str]], references: list[list[str]]) -> None:
        """Each example's top-k answers, best first: 1 if its label is among them, else 0."""
        if len(rankings) != len(references):
            raise ValueError(f"{len(rankings)} rankings but {len(references)} reference lists")
        for index, (ranking, refs) in enumerate(zip(rankings, references)):
            self.top_k_hits.append(int(_label(refs, index) in {answer.strip() for answer in ranking}))
            self.ranking_lengths.append(len(ranking))

    def state(self) -> dict:
        return {
            "predictions": list(self.predictions),
            "labels": list(self.labels),
            "top_k_hits": list(self.top_k_hits),
            "ranking_lengths": list(self.ranking_lengths),
        }

    def load_state(self, merged: dict) -> None:
        self.predictions, self.labels = list(merged["predictions"]), list(merged["labels"])
        self.top_k_hits, self.ranking_lengths = list(merged["top_k_hits"]), list(merged["ranking_lengths"])

    def example_scores(self) -> list[dict]:
        """100 for a right label, else 0 (the mean is `accuracy`), with `correct`."""
        return [{"score": 100.0 * (p == t), "correct": p == t} for p, t in zip(self.predictions, self.labels)]

    def compute(self) -> dict[str, float]:
        count = len(self.labels)
        correct = sum(p == t for p, t in zip(self.predictions, self.labels))
        scores = {"accuracy": 100 * correct / count if count else 0.0}
        if self.ranking_lengths:
            scores[f"top{max(self.ranking_lengths)}_accuracy"] = 100 * sum(self.top_k_hits) / len(self.top_k_hits)
        true_positives = Counter(t for p, t in zip(self.predictions, self.labels) if p == t)
        predicted, support = Counter(self.predictions), Counter(self.labels)
        per_class = {}
        for label in sorted(predicted.keys() | support.keys()):
            precision = true_positives[label] / predicted[label] if predicted[label] else 0.0
            recall = true_positives[label] / support[label] if support[label] else 0.0
            per_class[label] = (precision, recall, _f1(precision, recall), support[label])
        scores["macro_f1"] = 100 * sum(f1 for _, _, f1, _ in per_class.values()) / len(per_class) if per_class else 0.0
        if self.per_class:
            for label, (precision, recall, f1, count_of_label) in per_class.items():
                scores.update(
                    {
                        f"class/{label}/precision": 100 * precision,
                        f"class/{label}/recall": 100 * recall,
                        f"class/{label}/f1": 100 * f1,
                        f"class/{label}/support": float(count_of_label),
                    }
                )
        return scores
