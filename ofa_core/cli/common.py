"""What the recipe verbs share: the `--set` option and recipe → plugins → registry → components."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import attrs

from ofa_core._errors import OFAError
from ofa_core.cli.options import add_overrides_option
from ofa_core.inference.loading import quiet_transformers as quiet_transformers  # the verbs' import
from ofa_core.recipe import MissingRecipePath, Recipe, Resolved
from ofa_core.recipe.loading import load_all
from ofa_core.recipe.preflight import check
from ofa_core.recipe.problems import problems_of, raise_problems
from ofa_core.recipe.purpose import TRAINING, Purpose
from ofa_core.recipe.resolution import resolve_all
from ofa_core.recipe.sections import SETUP


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", metavar="RECIPE", help="recipe JSON file")
    add_overrides_option(parser)


def prepare(
    args: argparse.Namespace, preflight: bool = False, purpose: Purpose = TRAINING
) -> tuple[Recipe, tuple[Resolved, ...]]:
    """Load the recipe, the plugins it names, and every task's components, once: all checks before any compute,
    of what `purpose` reads (an evaluation: its split, the task's files, no starting model, loss or training).
    With `preflight`, also everything else that would stop a run before its first step (`recipe.preflight`).
    Every mistake found is raised together (`RecipeProblems`; one alone as itself).

    A missing path inside the demo folder makes the demo get generated (once) before trying again, but only when
    nothing else is wrong: a mistake in the recipe (a typo, a wrong type) is reported first, without the demo's
    paths, and nothing is generated or written.
    """
    try:
        return _load_and_resolve(args, preflight, purpose)
    except OFAError as error:
        from ofa_core.demo.folder import awaits_first_use, create_on_first_use

        problems = problems_of(error)
        waiting = [
            problem for problem in problems if isinstance(problem, MissingRecipePath) and awaits_first_use(problem.path)
        ]
        if not waiting:
            raise
        if len(waiting) < len(problems):
            raise_problems([problem for problem in problems if problem not in waiting])
        for problem in waiting:
            create_on_first_use(problem.path)
    return _load_and_resolve(args, preflight, purpose)


def _load_and_resolve(
    args: argparse.Namespace, preflight: bool, purpose: Purpose
) -> tuple[Recipe, tuple[Resolved, ...]]:
    recipe, problems = load_all(args.recipe, args.overrides, purpose)
    if recipe is None:
        raise_problems(problems)
    try:
        args.loader.load_recipe_modules(recipe.spec.plugins.load, recipe.base_dir)
    except OFAError as error:
        raise_problems([*problems, recipe.error(str(error))])
    resolution = resolve_all(recipe, args.loader.registry(), purpose)
    problems += resolution.problems
    if preflight:
        problems += _preflight(recipe, resolution.parts, problems)
    raise_problems(problems)
    return recipe, resolution.tasks


def _preflight(recipe: Recipe, parts: tuple[dict[str, Any], ...], found: list[OFAError]) -> list[OFAError]:
    """`recipe.preflight.check`, given the checkpoint's model directory and the checkpoint a run would resume from."""
    from ofa_core.inference.loading import NoModelError, list_checkpoints, model_directory

    problems: list[OFAError] = []
    checkpoint = Path(recipe.spec.model.checkpoint)
    model_dir = None
    if checkpoint.is_dir():
        try:
            model_dir = model_directory(checkpoint)
        except NoModelError as error:
            problems.append(recipe.missing(f"model.checkpoint: {error}", checkpoint))
    elif not any(isinstance(problem, MissingRecipePath) and problem.path == checkpoint for problem in found):
        problems.append(
            recipe.missing(
                f"model.checkpoint: {checkpoint} is not a directory; give a model directory or a run directory",
                checkpoint,
            )
        )
    resume = recipe.training.resume_from_checkpoint
    if resume == "auto":
        newest = list_checkpoints(Path(recipe.training.output_dir))
        resume = newest[-1] if newest else None
    return problems + check(recipe, parts, model_dir, Path(resume) if resume is not None else None)


def report(error: OFAError, args: argparse.Namespace) -> int:
    """Print each problem as its own `error:` line on stderr; exit status 2 (`--debug` raises instead)."""
    if getattr(args, "debug", False):
        raise error
    lines, said = [], set()
    for problem in reversed(problems_of(error)):  # a recipe's setup text once, after the last path it explains
        message, marker, setup = str(problem).partition(SETUP)
        lines.append(message if marker and setup in said else str(problem))
        said.add(setup)
    for line in reversed(lines):
        print(f"error: {line}", file=sys.stderr)
    return 2


def print_json(value: Any) -> None:
    """Print a result (dicts, attrs objects, paths) as indented JSON on stdout."""

    def default(obj: Any) -> Any:
        if attrs.has(type(obj)):
            return attrs.asdict(obj)
        return str(obj)

    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=default)
    sys.stdout.write("\n")
