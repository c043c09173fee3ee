"""Per-example scores of predictions rows, from the first of a task's metrics that gives them.

The evaluation writes them into the predictions file and `ofa report` computes them for a file written without
them, both through `score_rows`, so the report and a user's own analysis read the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ofa_core.plugin._specs import MetricSpec


@attrs.frozen
class ScoreSource:
    """Which metric scored the rows: its registered name and the `compute()` key the mean of `score` reproduces."""

    metric: str
    key: str


def score_source(metrics: Sequence[tuple[str, MetricSpec, Any]]) -> tuple[ScoreSource, MetricSpec, Any] | None:
    """The first of a task's (name, spec, options) metrics whose spec declares `example_score`, or None."""
    for name, spec, options in metrics:
        if spec.example_score is not None:
            return ScoreSource(name, spec.example_score), spec, options
    return None


def score_rows(metrics: Sequence[tuple[str, MetricSpec, Any]], rows: list[dict]) -> ScoreSource | None:
    """Add each row's per-example fields (`score`, flags such as `correct`) in place, from a fresh metric updated
    with every row (so corpus statistics are the split's); returns what scored them, None when no metric can."""
    found = score_source(metrics)
    if found is None or not rows:
        return found[0] if found else None
    source, spec, options = found
    metric = spec.build(options)
    if not hasattr(metric, "example_scores"):
        raise TypeError(f"metric {source.metric!r} declares example_score={source.key!r} but has no example_scores()")
    metric.update([row["prediction"] for row in rows], [row["references"] for row in rows])
    scores = metric.example_scores()
    if len(scores) != len(rows):
        raise ValueError(f"metric {source.metric!r}: example_scores() gave {len(scores)} scores for {len(rows)} rows")
    for row, fields in zip(rows, scores):
        row.update(fields)
    return source
