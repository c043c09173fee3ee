"""`ofa new-plugin NAME`: scaffold an installable plugin package from `ofa_core.scaffold`."""

from __future__ import annotations

import argparse

from ofa_core.scaffold import create

HELP = "create a plugin package (pyproject with the ofa_core entry point, module, tests) to start from"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument(
        "name", metavar="NAME", help="task name: lowercase letters, digits and underscores, e.g. my_vqa"
    )
    parser.add_argument(
        "--dir", default="plugins", metavar="DIR", help="where to create ofa-plugin-NAME/ (default: plugins)"
    )


def run(args: argparse.Namespace) -> int:
    target = create(args.dir, args.name)
    print(f"created {target}; next: pip install -e {target} && ofa tasks")
    return 0
