"""The tasks of a run, and which task each training step draws its batch from.

A single-task run is a mixture of one. In a mixture every optimizer step takes all its micro-batches
from one task, drawn by the task probabilities from a generator seeded with `(seed, step)`: the draw is
the same on every process (data-parallel steps stay aligned), needs no saved sampler state to resume
exactly, and consumes nothing of the global random state (dropout is untouched).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from typing import Any

import attrs

from ofa_core.data import Example
from ofa_core.plugin import ClosedSet, LossOutput, Metric

LossFn = Callable[[Any, dict], LossOutput]


@attrs.define
class TaskParts:
    """One task of a run: its examples, and how it is trained, decoded and scored.

    `metrics` maps a name to a factory of fresh `Metric`s; `higher_is_better` gives each one's direction
    for `metric_for_best_model`. `postprocess(text, record)` turns generated text into the prediction the
    metrics see. With a `closed_set`, evaluation picks answers inside it and, if it says so, the loss sees
    only the allowed tokens. `allowed_tokens` (token ids) restrict open-ended decoding (EOS stays allowed). `label`
    prefixes the task's scores and log keys in a mixture (`caption/cider`);
    `probability` is its share of training steps.
    """

    label: str = ""
    train_examples: Sequence[Example] = ()
    eval_examples: Sequence[Example] = ()
    loss_fn: LossFn | None = None
    metrics: dict[str, Callable[[], Metric]] = attrs.field(factory=dict)
    higher_is_better: dict[str, bool] = attrs.field(factory=dict)
    generation_config: Any = None
    postprocess: Callable[[str, dict], Any] | None = None
    closed_set: ClosedSet | None = None
    allowed_tokens: Sequence[int] | None = None
    probability: float = 1.0
    build_metric: Callable[[str, Mapping[str, Any]], Metric] | None = None
    """`build_metric(name, options)`: a fresh registered metric, for a loss that scores with one (SCST's reward);
    `from_recipe` builds it from the registry the recipe was resolved against."""


def mixture_probabilities(
    weights: Sequence[float], sizes: Sequence[int], temperature: float | None = None
) -> list[float]:
    """Each task's share of steps: proportional to its weight, times its number of training examples to the
    power 1/temperature when a temperature is given (1: by dataset size; larger: closer to the weights alone)."""
    scaled = [weight * (size ** (1.0 / temperature) if temperature else 1.0) for weight, size in zip(weights, sizes)]
    total = sum(scaled)
    if total <= 0:
        raise ValueError("the task weights and sizes give no task a positive probability")
    return [value / total for value in scaled]


def task_for_step(step: int, probabilities: Sequence[float], seed: int) -> int:
    """The index of the task that optimizer step `step` (0-based) trains on."""
    if len(probabilities) == 1:
        return 0
    bounds = list(accumulate(probabilities))
    draw = random.Random(f"ofa-mixture:{seed}:{step}").random() * bounds[-1]
    return min(bisect.bisect_right(bounds, draw), len(probabilities) - 1)
