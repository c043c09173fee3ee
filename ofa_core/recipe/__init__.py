"""Recipes: JSON files that pick model, task, data and training, checked before any compute.

`load` reads a recipe file (its `extends` parents and `--set` overrides merged, types checked, paths
resolved) into a `Recipe`; `resolve` looks its task and components up in the registry and builds
their options into a `Resolved`. A command does both once and hands the result down; `preflight`
checks the model's files and the data against them. Every mistake found is reported, not only the
first (`load_all`, `resolve_all`, `RecipeProblems`). A `Purpose` says what the command reads: a training run
checks everything, an evaluation only its split, the task's files and the settings it uses. Nothing here imports
torch.
"""

from ofa_core.recipe.loading import load, load_all
from ofa_core.recipe.problems import RecipeProblems
from ofa_core.recipe.purpose import TRAINING, Purpose, evaluation
from ofa_core.recipe.resolution import (
    Resolution,
    Resolved,
    build_options,
    closed_set_of,
    resolve,
    resolve_all,
    resolve_tasks,
    task_search,
)
from ofa_core.recipe.sections import MissingRecipePath, Recipe
from ofa_core.recipe.training import TrainingConfig

__all__ = [
    "TRAINING",
    "MissingRecipePath",
    "Purpose",
    "Recipe",
    "RecipeProblems",
    "Resolution",
    "Resolved",
    "TrainingConfig",
    "build_options",
    "closed_set_of",
    "evaluation",
    "load",
    "load_all",
    "resolve",
    "resolve_all",
    "resolve_tasks",
    "task_search",
]
