"""`ofa eval RECIPE --checkpoint DIR`: generate on the recipe's eval split and score it; the scores also go to
`<output_dir>/log.jsonl` and (unless `training.report_to` is 'none') TensorBoard `eval/<score>` scalars.

Only what the evaluation reads is checked: the model of `--checkpoint` (not the recipe's `model.checkpoint`), the
split's file and the task's files (answers, labels); the recipe's other splits, loss, resumed checkpoint and training
settings are not (`ofa_core.recipe.purpose`). The numbers are computed in `--precision` (default fp32, exact), never
in the recipe's training `mixed_precision`; it is checked against the device before the recipe's data is read, and
recorded in the result, beside the predictions and in the log line."""

from __future__ import annotations

import argparse
from pathlib import Path

from ofa_core._errors import OFAError
from ofa_core.cli.common import add_recipe_arguments, prepare, print_json, quiet_transformers
from ofa_core.cli.options import add_engine_options
from ofa_core.cli.report import add_limit_argument, check_limit
from ofa_core.cli.run import is_main_process, write_report
from ofa_core.recipe.purpose import evaluation

HELP = "evaluate a checkpoint with the recipe's task, data, generation and metrics"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="model directory to evaluate")
    parser.add_argument("--split", default="valid", choices=("valid", "test"), help="which split the reader opens")
    parser.add_argument(
        "--predictions",
        metavar="OUT.jsonl",
        help="where the predictions go, one JSON line per row "
        "(`id`, `prediction`, `references`, and `ranking` for a closed set); default: "
        "<output_dir>/predictions-<split>-<checkpoint>.jsonl; a mixture writes OUT-<label>.jsonl per task",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing predictions file (refused otherwise)"
    )
    add_engine_options(parser)
    parser.add_argument(
        "--report",
        metavar="REPORT.html",
        help="also write the HTML report of the predictions: "
        "images, predictions, references and per-example scores, worst first (docs/report.md)",
    )
    add_limit_argument(parser)


def run(args: argparse.Namespace) -> int:
    check_limit(args.report_limit)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_dir():
        raise OFAError(
            f"{checkpoint}: --checkpoint: no such directory; give a run's checkpoint-<step> or a converted model "
            f"directory"
        )
    if args.precision != "fp32" and args.backend == "torch":
        from ofa_core.inference.loading import default_device
        from ofa_core.model.precision import check

        check(args.precision, default_device())  # before the recipe's data is read
    recipe, tasks = prepare(args, purpose=evaluation(args.split))
    from ofa_core.trainer import from_recipe  # torch: only once the recipe is known to be good
    from ofa_core.trainer.distributed import leave_world

    quiet_transformers()
    result = from_recipe.evaluate(
        recipe,
        tasks,
        checkpoint,
        args.split,
        report=True,
        predictions_path=args.predictions,
        overwrite=args.overwrite,
        precision=args.precision,
        backend=args.backend,
    )
    if is_main_process():  # under torchrun one process speaks; the others print only their errors
        if args.report:
            runs = [path for path in (checkpoint, checkpoint.parent) if (path / "log.jsonl").is_file()]
            result["report"] = str(
                write_report(tasks, result, args.report, args.report_limit, runs[0] if runs else None)
            )
        print_json(result)
    leave_world()
    return 0
