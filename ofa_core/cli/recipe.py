"""`ofa recipe validate|show|schema|docs`: check a recipe, show resolved values and their origins, export the schema
and its docs."""

from __future__ import annotations

import argparse

import orjson

from ofa_core.cli.common import add_recipe_arguments, prepare, print_json, report
from ofa_core.recipe.docs import COMMAND, json_schema, render
from ofa_core.recipe.problems import RecipeProblems
from ofa_core.recipe.show import resolved_values

HELP = (
    "validate a recipe, show its resolved values with their origins, or print the recipe JSON Schema or its reference"
)


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    validate = actions.add_parser(
        "validate",
        parents=parents,
        help="check everything a run needs before its first step (keys, types, "
        "plugins, components, model files, data) and list every mistake",
    )
    add_recipe_arguments(validate)
    show = actions.add_parser("show", parents=parents, help="print every resolved value and where it came from")
    add_recipe_arguments(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    actions.add_parser("schema", parents=parents, help="print the JSON Schema of recipe files")
    actions.add_parser(
        "docs", parents=parents, help=f"print the recipe reference in Markdown, made from the schema ({COMMAND})"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "schema":
        print(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode())
        return 0
    if args.action == "docs":
        print(render(json_schema()), end="")
        return 0
    try:
        recipe, tasks = prepare(args, preflight=args.action == "validate")
    except RecipeProblems as error:
        return report(error, args)
    if args.action == "validate":
        print(f"{recipe.path}: ok")
        return 0
    values = resolved_values(recipe, tasks)
    if args.json:
        print_json({path: {"value": value, "from": origin} for path, (value, origin) in values.items()})
        return 0
    width = max(len(path) for path in values)
    for path, (value, origin) in values.items():
        text = orjson.dumps(value, default=str).decode()
        print(f"{path.ljust(width)} = {text}  # {origin}")
    for resolved in tasks:
        label = f" ({resolved.label}, weight {resolved.weight:g})" if resolved.label else ""
        print(
            f"# task {resolved.task_name}{label}: prompt {resolved.prompt.name} ({resolved.prompt.source!r} -> "
            f"{resolved.prompt.target!r}), metrics {', '.join(n for n, _, _ in resolved.metrics) or 'none'}, "
            f"generation {resolved.generation}"
        )
    return 0
