"""`ofa predict --model DIR --task NAME INPUT...`: generate for images, folders, TSVs or JSONL records, write JSONL.

The verb parses its flags into an `inference.batch_predict.PredictJob` and runs it; what happens to the
inputs, the part files and `--resume` is described there and in docs/predict.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from ofa_core import auto_registration
from ofa_core._errors import OFAError
from ofa_core.cli.options import add_engine_options, add_model_option
from ofa_core.inference.batch_predict import PredictJob, predict
from ofa_core.model.task_config import PROMPT_TYPES

HELP = "run a model on images, a folder of images or a TSV for a task, writing JSON lines"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image files, folders of images, .tsv files with a header (record fields, an optional 'image' "
        "column) or .jsonl files of records; none: one record made of the --field values (text-only tasks)",
    )
    add_model_option(parser)
    parser.add_argument(
        "--task",
        help="registered task name (see 'ofa tasks'); default: the task a converted official "
        "checkpoint's ofa_task.json names, with its language, prompt type and options",
    )
    parser.add_argument("--lang", help="prompt language (default: the checkpoint's, else the task's first)")
    parser.add_argument(
        "--prompt-type",
        choices=PROMPT_TYPES,
        help="what the decoder sees before the answer, as OFA's "
        "--prompt-type (default: the checkpoint's, else the task prompt's)",
    )
    for flag, help_text in ASSIGNMENTS.items():
        parser.add_argument(flag, action="append", default=[], metavar="KEY=VALUE", help=help_text)
    _add_running_arguments(parser)


ASSIGNMENTS = {
    "--field": "a record field for every input, e.g. --field text='a red car'",
    "--option": "a task option, as a recipe's task.options has them (JSON or plain text), "
    "e.g. --option labels_file=labels.txt or --option top_k=3",
    "--generation": "a generation setting over the task's official search (JSON value), "
    "e.g. --generation num_beams=3 --generation max_new_tokens=20",
}
"""The repeatable KEY=VALUE flags and their help."""


def _add_running_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the rows go and how the run goes: output, resume, errors, device, precision, backend, progress."""
    parser.add_argument("--output", "-o", metavar="FILE", help="JSONL file to write (default: stdout)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows --output already has (and an interrupted run's) and predict only the missing ids",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop with an error at the first unreadable image or TSV row (default: skip and report it)",
    )
    add_engine_options(parser, "torch device (default: cuda:LOCAL_RANK when CUDA is available, else cpu)")
    parser.add_argument(
        "--progress-every",
        type=int,
        default=1000,
        metavar="N",
        help="when stderr is not a terminal, a progress line every N images (and every 30 s)",
    )


def _assignments(values: list[str], flag: str, example: str, parse_json: bool = False) -> dict:
    parsed = {}
    for assignment in values:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise OFAError(f"{flag} {assignment}: expected KEY=VALUE, e.g. {flag} {example}")
        if parse_json:
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass  # plain text, e.g. a path
        parsed[key] = value
    return parsed


def run(args: argparse.Namespace) -> int:
    job = PredictJob(
        inputs=args.inputs,
        model=Path(args.model),
        task=args.task,
        lang=args.lang,
        prompt_type=args.prompt_type,
        fields=_assignments(args.field, "--field", "text='a red car'"),
        options=_assignments(args.option, "--option", "labels_file=labels.txt", parse_json=True),
        generation=_assignments(args.generation, "--generation", "max_new_tokens=20", parse_json=True),
        output=Path(args.output) if args.output else None,
        overwrite=args.overwrite,
        resume=args.resume,
        strict=args.strict,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        progress_every=args.progress_every,
    )
    if args.backend == "onnxruntime":
        auto_registration.suspend()  # exported graphs only: no model class is imported to register it
    return predict(job, args.loader.registry())
