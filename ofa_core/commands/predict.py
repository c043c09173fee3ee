"""`ofa predict --model DIR --task NAME INPUT...`: generate for images, a folder or a TSV, write JSONL.

Each input becomes a record (`id`, `image` and any `--field`/TSV columns); the task's prompt
turns it into source text, the task's generation settings decode, and its `postprocess` turns the
text into the prediction. Output goes to a temporary file renamed at the end, so an existing file
is never half-overwritten.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from ofa_core.errors import OFAError
from ofa_core.recipe import build_options, closed_set_of, task_search
from ofa_core.records import BadRows, image_reference

HELP = "run a model on images, a folder of images or a TSV for a task, writing JSON lines"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


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


def _tsv_records(path: Path, fields: dict[str, str], bad: BadRows) -> Iterator[dict]:
    """Rows of a TSV with a header naming an 'image' column, or of a headerless `id<TAB>image` TSV
    (MUGE's and OFA's image files). Images are paths (relative to the TSV) or base64."""
    with path.open(encoding="utf-8", newline="\n") as handle:
        first = handle.readline().rstrip("\r\n").split("\t")
        if "image" in first:
            header, start = first, 2
        elif len(first) == 2:
            header, start = ["id", "image"], 1
            handle.seek(0)
        else:
            raise OFAError(f"{path}: expected a header with an 'image' column, or headerless 'id<TAB>base64 image' rows "
                           f"(found {len(first)} columns: {', '.join(first)[:80]})")
        for number, line in enumerate(handle, start=start):
            values = line.rstrip("\r\n").split("\t")
            if values == [""]:
                continue
            row = dict(zip(header, values))
            if len(values) != len(header):
                bad(f"{path}:{number}", f"{len(values)} columns, the header has {len(header)}")
                continue
            try:
                image = image_reference(row["image"], path.parent) if row["image"] else None
            except ValueError as error:
                bad(f"{path}:{number}", str(error))
                continue
            yield {"id": row.get("id") or f"{path.stem}:{number}", **fields, **row, "image": image}
    bad.summarise(path, "predict")


def records(inputs: list[str], fields: dict[str, str]) -> Iterator[dict]:
    """One record per image: files, images in folders (sorted), or TSV rows."""
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise OFAError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
            for image in images:
                yield {"id": image.stem, "image": str(image), **fields}
        elif path.suffix.lower() == ".tsv":
            yield from _tsv_records(path, fields, BadRows("skip"))
        elif path.is_file():
            yield {"id": path.stem, "image": str(path), **fields}
        else:
            raise OFAError(f"{path}: no such file or folder")


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
    registry = args.plugins.registry()
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
    from ofa_core.trainer.checkpointing import model_directory

    model_dir = model_directory(model_dir)
    predictor = Predictor(model_dir, task, prompt, build_options(task.options, options, "--option", Path.cwd()), generation)
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


class Predictor:
    """Model + processor + the task's prompt, generation settings, closed set and postprocess."""

    def __init__(self, model_dir: Path, task, prompt, options=None, generation: dict | None = None) -> None:
        import torch  # heavy imports only when predicting

        from ofa_core.generation.closed_set import ClosedSetDecoder, decode_batch
        from ofa_core.generation.defaults import generation_config_from, special_token_ids
        from ofa_core.modeling import OFAForConditionalGeneration
        from ofa_core.processing import OFAProcessor

        self.torch = torch
        self.model = OFAForConditionalGeneration.from_pretrained(model_dir).eval()
        self.processor = OFAProcessor.from_pretrained(model_dir)
        self.generation = generation_config_from(task_search(task, prompt), **special_token_ids(self.model.config))
        unknown = self.generation.update(**(generation or {}))
        if unknown:
            raise OFAError(f"--generation {', '.join(unknown)}: not a generation setting; see transformers' GenerationConfig")
        self.task, self.prompt, self.options = task, prompt, options
        closed_set = closed_set_of(task, options, prompt)
        self.answers = functools.partial(  # (model, inputs) -> list[Decoded]
            decode_batch, generation_config=self.generation, tokenizer=self.processor.tokenizer,
            closed_set=ClosedSetDecoder(closed_set, self.processor.tokenizer) if closed_set else None)

    def __call__(self, batch: list[dict]) -> list[dict]:
        records = []
        for record in batch:
            if self.task.preprocess is not None:
                record = self.task.preprocess(dict(record), "test", self.options)
            if record is not None:
                records.append(record)
        if not records:
            return []
        try:
            sources = [self.prompt.source.format(**record) for record in records]
        except KeyError as error:
            raise OFAError(f"prompt '{self.prompt.name}' needs the field {error}; pass --field {error.args[0]}=... or a TSV column") from None
        inputs = self.processor(text=sources, images=[record.get("image") for record in records])
        with self.torch.no_grad():
            decoded = self.answers(self.model, inputs)
        rows = []
        for record, source, answer in zip(records, sources, decoded):
            text = answer.text
            prediction = self.task.postprocess(text, record, self.options) if self.task.postprocess else text
            row = {"id": record.get("id"), "image": record.get("image") if isinstance(record.get("image"), str) else None,
                   "source": source, "text": text, "prediction": prediction}
            if answer.ranking:
                row["ranking"] = [{"answer": name, "score": score} for name, score in answer.ranking]
            rows.append(row)
        return rows
