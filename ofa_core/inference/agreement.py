"""What a faster precision costs in answers: its answers next to exact mode's, and a metric of both.

benchmarks/bench_precision.py runs this on the trained demo model: a mode's agreement with fp32 means something only
where the model's output distributions are decisive, which random weights' are not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ofa_core.inference.predictor import Predictor

Score = Callable[[list[str], list[list[str]]], float]
"""(predictions, reference lists) -> a corpus score, e.g. CIDEr-D."""


@attrs.frozen
class ModeReport:
    """One mode's answers compared with the reference mode's (the first one given to `compare`)."""

    mode: str
    images: int
    same_best: int
    """Images whose best answer is token for token the reference mode's."""
    same_tokens: float
    """Share of token positions that agree, over the longer of the two answers of each image."""
    score: float
    """The metric of this mode's predictions against the references."""
    predictions: tuple[str, ...] = attrs.field(repr=False)

    def line(self, reference: ModeReport, metric: str = "CIDEr-D") -> str:
        """The benchmark's report line for this mode against `reference`."""
        change = (self.score - reference.score) / reference.score if reference.score else 0.0
        return (
            f"{self.mode}: identical best beams {self.same_best}/{self.images} ({self.same_best / self.images:.0%}), "
            f"identical tokens {self.same_tokens:.1%}; {metric} {self.score:.2f} vs {reference.score:.2f} "
            f"({change:+.2%})"
        )


def answer_tokens(rows: Sequence[Mapping[str, Any]], tokenizer: Any) -> list[list[int]]:
    """The token ids of each row's decoded answer (`text`, before the task's postprocess)."""
    return [tokenizer(row["text"], add_special_tokens=False)["input_ids"] for row in rows]


def token_agreement(reference: Sequence[Sequence[int]], other: Sequence[Sequence[int]]) -> tuple[int, float]:
    """(answers identical to the reference, share of agreeing token positions over the longer answer of each pair)."""
    if len(reference) != len(other):
        raise ValueError(f"{len(reference)} reference answers but {len(other)} to compare")
    same = sum(list(a) == list(b) for a, b in zip(reference, other))
    positions = sum(max(len(a), len(b)) for a, b in zip(reference, other))
    matching = sum(x == y for a, b in zip(reference, other) for x, y in zip(a, b))
    return same, (matching / positions if positions else 1.0)


def compare(
    models: Mapping[str, Any],
    processor: Any,
    task: Any,
    prompt: Any,
    options: Any,
    generation: Mapping[str, Any],
    records: Sequence[dict],
    references: Sequence[list[str]],
    score: Score,
    batch_size: int = 8,
) -> list[ModeReport]:
    """Each model's answers to `records` against the first model's (the exact one), with `score` against `references`.

    `models` maps a mode's name to a model ready to run (e.g. `ofa_core.model.precision.apply`'s result).
    """
    reports: list[ModeReport] = []
    exact_tokens: list[list[int]] = []
    for mode, model in models.items():
        predictor = Predictor(model, processor, task, prompt, options, dict(generation))
        rows = [
            row
            for start in range(0, len(records), batch_size)
            for row in predictor(list(records[start : start + batch_size]))
        ]
        if len(rows) != len(records):
            raise ValueError(f"{mode}: {len(rows)} answers for {len(records)} records; the task skipped some")
        tokens = answer_tokens(rows, processor.tokenizer)
        exact_tokens = exact_tokens or tokens
        same, share = token_agreement(exact_tokens, tokens)
        predictions = [row["prediction"] for row in rows]
        reports.append(
            ModeReport(mode, len(rows), same, share, score(predictions, list(references)), tuple(predictions))
        )
    return reports
