"""`ofa predict --model DIR --task NAME INPUT...`: generate for images, a folder or a TSV, write JSONL.

Each input becomes a record (`id`, `image` and any `--field`/TSV columns); the task's prompt
turns it into source text, the task's generation settings decode, and its `postprocess` turns the
text into the prediction. Output goes to a temporary file renamed at the end, so an existing file
is never half-overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from ofa_core.cli.common import quiet_transformers
from ofa_core.inference.inputs import records
from ofa_core.model.errors import OFAError
from ofa_core.recipe import build_options

HELP = "run a model on images, a folder of images or a TSV for a task, writing JSON lines"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders of images, or .tsv files with a header (an 'image' column plus record fields)")
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="model directory (with its processor files), or a run directory (its best checkpoint)")
    parser.add_argument("--task", required=True, help="registered task name (see 'ofa tasks')")
    parser.add_argument("--lang", help="prompt language (default: the task's first)")
    parser.add_argument("--field", action="append", default=[], metavar="KEY=VALUE",
                        help="a record field for every input, e.g. --field text='a red car'")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a task option, as a recipe's task.options has them (JSON or plain text), "
                             "e.g. --option labels_file=labels.txt or --option top_k=3")
    parser.add_argument("--generation", action="append", default=[], metavar="KEY=VALUE",
                        help="a generation setting over the task's official search (JSON value), "
                             "e.g. --generation num_beams=3 --generation max_new_tokens=20")
    parser.add_argument("--output", "-o", metavar="FILE", help="JSONL file to write (default: stdout)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument("--batch-size", type=int, default=8)


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
    fields = _assignments(args.field, "--field", "text='a red car'")
    options = _assignments(args.option, "--option", "labels_file=labels.txt", parse_json=True)
    generation = _assignments(args.generation, "--generation", "max_new_tokens=20", parse_json=True)
    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not args.overwrite:
        raise OFAError(f"{output}: already exists; pass --overwrite to replace it or choose another --output")
    registry = args.loader.registry()
    task = registry.tasks.get(args.task)
    lang = args.lang or next(iter(task.prompts))
    if lang not in task.prompts:
        raise OFAError(f"--lang {lang}: task '{args.task}' has prompts for {', '.join(task.prompts)}")
    prompt = registry.prompts.get(task.prompts[lang])
    if prompt.decoder_prefix:
        raise OFAError(f"prompt '{prompt.name}' has a decoder_prefix, which predict does not support yet")
    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise OFAError(f"{model_dir}: --model: no such directory")
    from ofa_core.inference.predictor import Predictor  # torch: only once there is something to predict

    quiet_transformers()
    predictor = Predictor.from_directory(model_dir, task, prompt, build_options(task.options, options, "--option", Path.cwd()),
                                         generation)
    temporary = output.with_name(f".{output.name}.partial") if output else None
    stream = temporary.open("wb") if temporary else sys.stdout.buffer
    try:
        batch: list[dict] = []
        for record in records(args.inputs, fields):
            batch.append(record)
            if len(batch) == args.batch_size:
                _write(stream, predictor(batch))
                batch = []
        if batch:
            _write(stream, predictor(batch))
    finally:
        if temporary:
            stream.close()
    if temporary:
        os.replace(temporary, output)
        print(f"wrote {output}", file=sys.stderr)
    return 0


def _write(stream, rows: list[dict]) -> None:
    for row in rows:
        stream.write(orjson.dumps(row, default=str) + b"\n")
    stream.flush()
