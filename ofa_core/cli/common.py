"""What the recipe verbs share: the `--set` option and recipe → plugins → registry → components."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import attrs

from ofa_core.model.errors import OFAError
from ofa_core.recipe import MissingRecipePath, Recipe, Resolved, load, resolve_tasks


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", metavar="RECIPE", help="recipe JSON file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set training.learning_rate=1e-4 (value parsed as JSON)")


def prepare(args: argparse.Namespace) -> tuple[Recipe, tuple[Resolved, ...]]:
    """Load the recipe, the plugins it names, and every task's components, once: all checks before any compute.

    A missing path inside the demo folder makes the demo get generated (once) before trying again.
    """
    try:
        return _load_and_resolve(args)
    except MissingRecipePath as error:
        from ofa_core.demo.folder import create_on_first_use

        if not create_on_first_use(error.path):
            raise
    return _load_and_resolve(args)


def _load_and_resolve(args: argparse.Namespace) -> tuple[Recipe, tuple[Resolved, ...]]:
    recipe = load(args.recipe, args.overrides)
    try:
        args.loader.load_recipe_modules(recipe.spec.plugins.load, recipe.base_dir)
    except OFAError as error:
        raise recipe.error(str(error)) from error
    return recipe, resolve_tasks(recipe, args.loader.registry())


def print_json(value: Any) -> None:
    """Print a result (dicts, attrs objects, paths) as indented JSON on stdout."""
    def default(obj: Any) -> Any:
        if attrs.has(type(obj)):
            return attrs.asdict(obj)
        return str(obj)
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=default)
    sys.stdout.write("\n")


def quiet_transformers() -> None:
    """Silence transformers' per-load and per-save progress bars, which would interleave with ours."""
    from transformers.utils import logging

    logging.disable_progress_bar()
