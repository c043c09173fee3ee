"""`ofa eval RECIPE --checkpoint DIR`: generate on the recipe's eval split and score it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ofa_core.commands.common import add_recipe_arguments, prepare, print_json
from ofa_core.commands.run import trainer_function
from ofa_core.errors import OFAError

HELP = "evaluate a checkpoint with the recipe's task, data, generation and metrics"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="model directory to evaluate")
    parser.add_argument("--split", default="valid", choices=("valid", "test"), help="which split the reader opens")


def run(args: argparse.Namespace) -> int:
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_dir():
        raise OFAError(f"{checkpoint}: --checkpoint: no such directory; give a run's checkpoint-<step> or a converted model directory")
    recipe, registry, _resolved = prepare(args)
    print_json(trainer_function("evaluate")(recipe, registry, checkpoint, args.split))
    return 0
