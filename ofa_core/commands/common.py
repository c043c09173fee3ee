"""What the recipe verbs share: the `--set` option and recipe → plugins → registry → components."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import attrs

from ofa_core.errors import OFAError
from ofa_core.recipe import Recipe, Resolved, load, resolve
from ofa_core.registry import Registry


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", metavar="RECIPE", help="recipe JSON file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set training.learning_rate=1e-4 (value parsed as JSON)")


def prepare(args: argparse.Namespace) -> tuple[Recipe, Registry, Resolved]:
    """Load the recipe, the plugins it names, and every component: all checks before any compute."""
    recipe = load(args.recipe, args.overrides)
    try:
        args.plugins.load_recipe_modules(recipe.spec.plugins.load, recipe.base_dir)
    except OFAError as error:
        raise recipe.error(str(error)) from error
    registry = args.plugins.registry()
    return recipe, registry, resolve(recipe, registry)


def print_json(value: Any) -> None:
    """Print a result (dicts, attrs objects, paths) as indented JSON on stdout."""
    def default(obj: Any) -> Any:
        if attrs.has(type(obj)):
            return attrs.asdict(obj)
        return str(obj)
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=default)
    sys.stdout.write("\n")
