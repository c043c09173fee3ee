"""`ofa report PREDICTIONS.jsonl --recipe R`: the evaluation report of predictions already written.

One self-contained HTML page (docs/report.md): every example's image, prompt, prediction, references and
per-example score, worst first, with a run's curves (`--run`, else the predictions' folder when it is a run
directory). PREDICTIONS may be a run directory itself: its newest predictions file (a mixture: each task's). Rows
written without scores are scored with the recipe's metric; images and prompts come from the recipe's reader, for
the split the predictions file's meta names. `ofa eval --report` and `ofa run` write the same page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ofa_core._errors import OFAError
from ofa_core.cli.common import prepare
from ofa_core.cli.options import add_overrides_option
from ofa_core.recipe.purpose import evaluation
from ofa_core.report import DEFAULT_LIMIT

HELP = "write the HTML report of a predictions file: images, predictions, references, scores, worst first"
LIMIT_HELP = "examples shown per task, worst first (the page states how many there are); default %(default)s"


def add_limit_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-limit", type=int, default=DEFAULT_LIMIT, metavar="N", help=LIMIT_HELP)


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument(
        "predictions",
        nargs="+",
        metavar="PREDICTIONS.jsonl",
        help="the predictions file `ofa eval` wrote (a mixture: each task's <stem>-<label>.jsonl), or a run "
        "directory: its newest predictions-*.jsonl",
    )
    parser.add_argument("--recipe", required=True, metavar="RECIPE", help="the recipe the predictions were made with")
    add_overrides_option(
        parser, "override a recipe value, as the evaluation did (e.g. --set data.reader.valid=val.tsv)"
    )
    parser.add_argument(
        "--run",
        dest="run_dir",
        metavar="DIR",
        help="a run directory: its log.jsonl curves go into the report; default: the predictions' folder when it "
        "holds a log.jsonl",
    )
    parser.add_argument(
        "--out",
        metavar="REPORT.html",
        help="where the page goes; default: beside the first predictions file, named after it with .html",
    )
    parser.add_argument(
        "--split",
        choices=("valid", "test"),
        help="the split the predictions are of; default: the one their meta file names, else valid",
    )
    add_limit_argument(parser)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise OFAError(f"--report-limit: {limit} shows no example; give a number of examples of 1 or more")


def newest(directory: Path, ending: str = ".jsonl") -> Path:
    """The run directory's most recent predictions file ending in `ending` (its final evaluation's)."""
    found = [path for path in directory.glob(f"predictions-*{ending}") if path.is_file()]
    if not found:
        raise OFAError(
            f"{directory}: PREDICTIONS: no predictions-*{ending} in this directory; give the predictions JSONL "
            "`ofa eval` wrote, or the run directory of a finished `ofa run`"
        )
    return max(found, key=lambda path: path.stat().st_mtime_ns)


def task_files(tasks, paths: list[Path]) -> dict[str, Path]:
    """Which file holds which task: the one file of a single task; in a mixture the file named `...-<label>.jsonl`
    (the longest label that fits). A run directory stands for its newest file of each task."""
    for path in paths:
        if not path.exists():
            raise OFAError(f"{path}: PREDICTIONS: no such file; give the predictions JSONL `ofa eval` wrote")
    labels = [resolved.label for resolved in tasks]
    if labels == [""]:
        if len(paths) != 1:
            raise OFAError(f"{paths[1]}: PREDICTIONS: the recipe has one task; give its one predictions file")
        return {"": newest(paths[0]) if paths[0].is_dir() else paths[0]}
    if len(paths) == 1 and paths[0].is_dir():
        return {label: newest(paths[0], f"-{label}.jsonl") for label in labels}
    files: dict[str, Path] = {}
    for path in paths:
        fitting = [label for label in labels if path.name.endswith(f"-{label}.jsonl")]
        if not fitting:
            raise OFAError(
                f"{path}: PREDICTIONS: not named after a task of the mixture "
                f"({', '.join(f'*-{label}.jsonl' for label in labels)}); give the files `ofa eval` wrote"
            )
        files.setdefault(max(fitting, key=len), path)
    return files


def given_run_directory(given: str | None) -> Path | None:
    """`--run`, checked to hold a run's log.jsonl (None when not given)."""
    if given is None:
        return None
    run_dir = Path(given)
    if not (run_dir / "log.jsonl").is_file():
        raise OFAError(f"{run_dir}: --run: no log.jsonl in it; give the run's output directory")
    return run_dir


def predictions_run_directory(files: dict[str, Path]) -> Path | None:
    """The folder of the predictions when it holds a run's log.jsonl (`ofa run` and `ofa eval` write their
    predictions in the run directory)."""
    folder = next(iter(files.values())).parent
    return folder if (folder / "log.jsonl").is_file() else None


def run(args: argparse.Namespace) -> int:
    check_limit(args.report_limit)
    paths = [Path(path) for path in args.predictions]
    run_dir = given_run_directory(args.run_dir)  # a wrong --run is said before the recipe is read
    from ofa_core.report.sources import read_meta

    first = newest(paths[0]) if paths[0].is_dir() else paths[0]
    split = args.split or read_meta(first).get("split", "valid")
    _, tasks = prepare(args, purpose=evaluation(split))
    files = task_files(tasks, paths)
    from ofa_core.report import build, sources

    out = Path(args.out) if args.out else next(iter(files.values())).with_suffix(".html")
    written = build.write(
        sources.sections(tasks, files, args.report_limit, split),
        out,
        run_dir=run_dir or predictions_run_directory(files),
        limit=args.report_limit,
    )
    print(written)
    return 0
