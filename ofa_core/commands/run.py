"""`ofa run RECIPE`: validate everything, then train with the trainer."""

from __future__ import annotations

import argparse

from ofa_core.commands.common import add_recipe_arguments, prepare, print_json
from ofa_core.errors import OFAError

HELP = "train as a recipe says (validated first; --dry-run stops after validation)"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="validate the recipe, plugins and components, then stop")


def run(args: argparse.Namespace) -> int:
    recipe, registry, _resolved = prepare(args)
    if args.dry_run:
        print(f"{recipe.path}: ok (task {recipe.spec.task.name}, output {recipe.spec.output_dir})")
        return 0
    print_json(trainer_function("run")(recipe, registry))
    return 0


def trainer_function(name: str):
    """`ofa_core.trainer.<name>`, or a one-line error while the trainer is not installed."""
    try:
        import ofa_core.trainer as trainer
    except ImportError as error:
        raise OFAError(f"the trainer is unavailable ({error}); reinstall with pip install -e .") from error
    if not hasattr(trainer, name):
        raise OFAError(f"ofa_core.trainer has no {name}(); the trainer is incomplete in this version")
    return getattr(trainer, name)
