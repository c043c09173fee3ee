"""`ofa run RECIPE`: validate everything, train with the trainer, then score the best checkpoint.

With evaluation on, the run ends by evaluating its best checkpoint (else its newest) on the
validation split: the predictions land in `predictions-valid-<checkpoint>.jsonl` in the run
directory, a few of them are printed beside their references, and `report.html` beside them shows them all
with the run's curves (docs/report.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from itertools import islice
from pathlib import Path

import orjson

from ofa_core.cli.common import add_recipe_arguments, prepare, print_json, quiet_transformers, report
from ofa_core.recipe.problems import RecipeProblems
from ofa_core.report import DEFAULT_LIMIT

HELP = "train as a recipe says (validated first; --dry-run stops after validation)"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    add_recipe_arguments(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the recipe, plugins, components, model files and data, then stop",
    )


def run(args: argparse.Namespace) -> int:
    try:
        recipe, tasks = prepare(args, preflight=True)
    except RecipeProblems as error:
        return report(error, args)
    if args.dry_run:
        names = ", ".join(resolved.label or resolved.task_name for resolved in tasks)
        print(f"{recipe.path}: ok (task{'s' if len(tasks) > 1 else ''} {names}, output {recipe.spec.output_dir})")
        return 0
    from ofa_core.trainer import from_recipe  # torch: only once the recipe is known to be good
    from ofa_core.trainer.distributed import leave_world

    quiet_transformers()
    summary = from_recipe.train(recipe, tasks)
    output_dir = Path(recipe.training.output_dir)
    if recipe.training.eval_strategy != "no" and any(output_dir.glob("checkpoint-*")):
        final = from_recipe.evaluate(recipe, tasks, output_dir)  # the run's best checkpoint
        summary["final_eval"] = final
        if is_main_process():
            final["report"] = str(write_report(tasks, final, output_dir / "report.html", run_dir=output_dir))
            show_samples(final, recipe.training.num_sample_predictions)
    if is_main_process():  # under torchrun one process speaks; the others print only their errors
        print_json(summary)
    leave_world()
    return 0


def write_report(tasks, result: dict, out: str | Path, limit: int = DEFAULT_LIMIT, run_dir: Path | None = None) -> Path:
    """The HTML report (docs/report.md) of an evaluation's predictions files, at `out`."""
    from ofa_core.report import build, sources

    files = result["predictions"] if isinstance(result["predictions"], dict) else {"": result["predictions"]}
    return build.write(sources.sections(tasks, files, limit, result["split"]), out, run_dir=run_dir, limit=limit)


def is_main_process() -> bool:
    """Rank 0 of a torchrun job (torchrun sets RANK), or a single process."""
    return os.environ.get("RANK", "0") == "0"


def show_samples(result: dict, count: int) -> None:
    """The headline scores of the final evaluation, per-class scores (when a metric gives them) as a short
    table, and the first predictions of each task's file beside their references, on stderr."""
    from ofa_core.trainer.reporting import class_table, headline

    files = result["predictions"] if isinstance(result["predictions"], dict) else {"": result["predictions"]}
    print(
        f"ofa: {result['checkpoint']} on {result['split']}: {headline(result)}; predictions in "
        f"{', '.join(files.values())}" + (f"; report in {result['report']}" if result.get("report") else ""),
        file=sys.stderr,
    )
    for line in class_table(result):
        print(f"  {line}", file=sys.stderr)
    for label, path in files.items():
        with open(path, "rb") as handle:
            for line in islice(handle, count):
                row = orjson.loads(line)
                task = f"[{label}] " if label else ""
                print(
                    f"  {task}{row['id']}: {row['prediction']}  <- references: "
                    f"{' / '.join(map(str, row['references'][:2]))}",
                    file=sys.stderr,
                )
