"""Recipes: JSON files that pick model, task, data and training, checked before any compute.

`load` reads a recipe file (its `extends` parents and `--set` overrides merged, types checked, paths
resolved) into a `Recipe`; `resolve` looks its task and components up in the registry and builds
their options into a `Resolved`. A command does both once and hands the result down. Nothing here
imports torch.
"""

from ofa_core.recipe.loading import load
from ofa_core.recipe.resolution import Resolved, build_options, closed_set_of, resolve, resolve_tasks, task_search
from ofa_core.recipe.sections import MissingRecipePath, Recipe
from ofa_core.recipe.training import TrainingConfig

__all__ = ["MissingRecipePath", "Recipe", "Resolved", "TrainingConfig", "build_options", "closed_set_of", "load",
           "resolve", "resolve_tasks",
           "task_search"]
