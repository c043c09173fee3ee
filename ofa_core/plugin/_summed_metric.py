"""The shape most metrics share: each example scored on its own into totals that add up across processes.

Accuracy, soft VQA accuracy, mean IoU, edit distance and ROUGE all sum something per example and divide by the
count. The bookkeeping around that sum (length check, per-example report rows, state and its merge) is the same
in each; `SummedMetric` holds it, so a metric says only what one example adds.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SummedMetric:
    """Base of a metric whose state is `count` and the totals named in `TOTALS`, all sums.

    A subclass lists its totals, implements `score(prediction, references)` and `compute()`, and keeps an
    `__init__(self, options: XOptions)` calling `super().__init__(options)`: its annotation names the options
    class that `Metrics.add` registers. `update`, `state`, `load_state` and `example_scores` come from here.
    """

    TOTALS: ClassVar[tuple[str, ...]] = ()
    """The sums besides `count`, e.g. ("hits",); each starts at 0 and is what `score` adds to."""

    def __init__(self, options: Any) -> None:
        self.options = options
        self.totals: dict[str, float] = dict.fromkeys((*self.TOTALS, "count"), 0)
        self.examples: list[dict] = []

    def score(self, prediction: Any, references: list) -> tuple[dict[str, float], dict]:
        """What one example adds to the totals, and its row for the report (`score` on the reported scale, flags
        such as `correct`)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement score(prediction, references)")

    def update(self, predictions: list, references: list[list]) -> None:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        for prediction, refs in zip(predictions, references):
            added, row = self.score(prediction, refs)
            for name, value in added.items():
                self.totals[name] += value
            self.totals["count"] += 1
            self.examples.append(row)

    @property
    def count(self) -> int:
        return int(self.totals["count"])

    def mean(self, name: str) -> float:
        """The total `name` per example, x100 (0 before any example)."""
        return 100 * self.totals[name] / self.count if self.count else 0.0

    def state(self) -> dict:
        return dict(self.totals)

    def load_state(self, merged: dict) -> None:
        self.totals = {name: merged[name] for name in self.totals}

    def example_scores(self) -> list[dict]:
        return list(self.examples)
