"""The generic trainer: one loop for every task, from LiT-tuning to full fine-tuning.

`run` and `evaluate` are what the CLI calls; `Trainer` (in `loop`) works without recipes.
torch is imported only when they are called, so reading a recipe's `TrainingConfig` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ofa_core.trainer.config import TrainingConfig

__all__ = ["TrainingConfig", "evaluate", "run"]


def run(recipe, registry) -> dict[str, Any]:
    """Train as a resolved recipe says; returns the run summary."""
    from ofa_core.trainer.adapters import run as run_recipe

    return run_recipe(recipe, registry)


def evaluate(recipe, registry, checkpoint: str | Path, split: str = "valid") -> dict[str, Any]:
    """Score `checkpoint` on the recipe's `split`; returns metrics and the predictions file."""
    from ofa_core.trainer.adapters import evaluate as evaluate_recipe

    return evaluate_recipe(recipe, registry, checkpoint, split)
