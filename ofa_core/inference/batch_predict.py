"""`ofa predict --model DIR --task NAME INPUT...`: generate for images, folders, TSVs or JSONL records, write JSONL.

Each input becomes a record (`id`, `image` and any `--field`/TSV/JSONL fields; no image: a text-only record, and
no INPUT at all: one record of the `--field` values). A converted official checkpoint's `ofa_task.json` supplies
the task, language, prompt type and options the user leaves out. The task's prompt
turns it into source text, the task's generation settings decode, and its `postprocess` turns the
text into the prediction. Inputs are listed first (ids checked unique, nothing decoded), then each
process (one, or several under torchrun) predicts its share, verifying every image before batching;
unreadable images are skipped and reported (`--strict`: an error). Rows go to part files merged into
`--output` in input order at the end, so an existing file is never half-overwritten, and `--resume`
predicts only the ids the output (or an interrupted run's parts) lacks. `--precision` picks fp32 (exact), bf16, fp16
or int8; it is recorded next to the output in `FILE.meta.json`. See docs/predict.md.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import time
from pathlib import Path

import orjson

from ofa_core import auto_registration
from ofa_core.cli.common import quiet_transformers
from ofa_core.inference import part_files
from ofa_core.inference.inputs import entries, load, quiet_entries, unique_ids
from ofa_core.inference.loading import BACKEND_HELP, BACKENDS
from ofa_core.inference.task_choice import choose_task
from ofa_core._errors import OFAError
from ofa_core.model.precision import HELP as PRECISION_HELP, PRECISIONS
from ofa_core.model.task_config import PROMPT_TYPES, read_checkpoint_task

logger = logging.getLogger(__name__)

HELP = "run a model on images, a folder of images or a TSV for a task, writing JSON lines"


def add_arguments(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="image files, folders of images, .tsv files with a header (record fields, an optional 'image' "
                             "column) or .jsonl files of records; none: one record made of the --field values (text-only tasks)")
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="model directory (with its processor files), or a run directory (its best checkpoint)")
    parser.add_argument("--task", help="registered task name (see 'ofa tasks'); default: the task a converted official "
                                       "checkpoint's ofa_task.json names, with its language, prompt type and options")
    parser.add_argument("--lang", help="prompt language (default: the checkpoint's, else the task's first)")
    parser.add_argument("--prompt-type", choices=PROMPT_TYPES, help="what the decoder sees before the answer, as OFA's "
                        "--prompt-type (default: the checkpoint's, else the task prompt's)")
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
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows --output already has (and an interrupted run's) and predict only the missing ids")
    parser.add_argument("--strict", action="store_true",
                        help="stop with an error at the first unreadable image or TSV row (default: skip and report it)")
    parser.add_argument("--device", help="torch device (default: cuda:LOCAL_RANK when CUDA is available, else cpu)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
    parser.add_argument("--progress-every", type=int, default=1000, metavar="N",
                        help="when stderr is not a terminal, a progress line every N images (and every 30 s)")


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
    if args.batch_size < 1 or args.progress_every < 1:
        raise OFAError("--batch-size and --progress-every must be at least 1")
    world = part_files.Processes()
    output = Path(args.output) if args.output else None
    if output is None and (world.size > 1 or args.resume):
        raise OFAError("--output FILE is needed " + ("to --resume" if args.resume else f"with {world.size} processes"))
    if args.resume and args.overwrite:
        raise OFAError("--resume keeps the rows of --output and --overwrite replaces them; pass one of them")
    if output is not None and output.exists() and not (args.overwrite or args.resume):
        raise OFAError(f"{output}: already exists; pass --overwrite to replace it, --resume to complete it, or choose another --output")
    if args.resume and output is not None:
        _check_resumed_precision(output, args.precision)
    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise OFAError(f"{model_dir}: --model: no such directory")
    recorded = read_checkpoint_task(model_dir)
    task, prompt, options = choose_task(args.loader.registry(), args.task, args.lang, options, caller="predict",
                                        lang_name="--lang", options_name="--option", prompt_type=args.prompt_type,
                                        checkpoint=recorded, task_name="--task")
    args.task = args.task or recorded.task

    # List every input (cheap: no image is opened) on every process: ids, their order and what is already done.
    bad_rows = _strict_row if args.strict else (None if world.main else _ignore)
    ids = list(unique_ids(entries(args.inputs, fields, bad_rows)))
    order = {key: index for index, key in enumerate(ids)}
    done: set[str] = set()
    if args.resume and output.exists():
        done = {row["id"] for _, row in part_files.output_rows(output, lenient_tail=True)}

    reporter = logging.StreamHandler(sys.stderr)
    reporter.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(reporter)
    world.start()
    try:
        code = _predict(args, world, output, ids, order, done, fields, task, prompt, model_dir, options, generation)
    except BaseException:
        world.stop(together=False)
        raise
    finally:
        logger.removeHandler(reporter)
    world.stop()
    return code


def _predict(args, world, output, ids, order, done, fields, task, prompt, model_dir, options, generation) -> int:
    tag = part_files.run_tag(world) if output is not None else ""
    leftovers = part_files.leftover_parts(output, tag) if output is not None else []
    salvaged = part_files.salvaged_rows(leftovers, order, done) if args.resume else []
    done |= {ids[index] for index, _ in salvaged}
    mine = sum(1 for index, key in enumerate(ids) if world.owns(index) and key not in done)
    if world.main and args.resume:
        remaining = sum(1 for key in ids if key not in done)
        print(f"resume: {len(ids) - remaining} of {len(ids)} inputs already predicted ({len(salvaged)} of them in an "
              f"interrupted run's part files); {remaining} to go", file=sys.stderr)

    if args.backend == "onnxruntime":
        auto_registration.suspend()  # exported graphs only: no model class is imported to register it
    from ofa_core.inference.loading import load_for_inference  # torch: only once there is something to predict
    from ofa_core.inference.predictor import Predictor

    quiet_transformers()
    device = world.device(args.device) if args.backend == "torch" else args.device
    loaded = load_for_inference(model_dir, args.precision, device, backend=args.backend)
    if loaded.precision.notice and world.main:
        print(loaded.precision.notice, file=sys.stderr)
    predictor = Predictor(loaded.model, loaded.processor, task, prompt, options, generation)
    if output is not None and world.main:
        _write_metadata(output, args, prompt.lang, loaded.precision)
    started = time.perf_counter()
    part = part_files.part_path(output, tag, world.rank) if output is not None else None
    stream = part.open("wb") if part is not None else sys.stdout.buffer
    progress = _Progress(mine, args.progress_every, f"rank 0 of {world.size}: " if world.size > 1 else "", world.main)
    written = skipped = 0
    try:
        batch: list[dict] = []
        wanted = (entry for index, entry in enumerate(quiet_entries(args.inputs, fields))
                  if world.owns(index) and entry.id not in done)
        for entry in wanted:
            try:
                batch.append(load(entry))
            except ValueError as error:
                skipped += _bad(entry.source, str(error), args.strict)
                progress.update(1)
            if len(batch) == args.batch_size:
                rows, bad = _predict_batch(predictor, batch, args.strict)
                written, skipped = written + _write(stream, rows), skipped + bad
                progress.update(len(batch))
                batch = []
        if batch:
            rows, bad = _predict_batch(predictor, batch, args.strict)
            written, skipped = written + _write(stream, rows), skipped + bad
            progress.update(len(batch))
    finally:
        progress.close()
        if part is not None:
            stream.close()
    totals = world.gather((written, skipped))  # waits for every process to finish its share
    if not world.main:
        return 0
    written, skipped = (sum(values) for values in zip(*totals))
    if output is not None:
        parts = [part_files.part_path(output, tag, rank) for rank in range(world.size)]
        part_files.merge(output, output if args.resume and output.exists() else None, parts, salvaged, order)
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    print(f"{written} images in {seconds:.1f} s ({written / max(seconds, 1e-9):.2f} images/s, model loading excluded); "
          f"{skipped} skipped; precision {loaded.precision.precision}", file=sys.stderr)
    if output is not None:
        print(f"wrote {output}", file=sys.stderr)
    return 0


def metadata_path(output: Path) -> Path:
    """Where the settings of the run that wrote `output` are kept: `FILE.meta.json` beside it."""
    return output.with_name(output.name + ".meta.json")


def _write_metadata(output: Path, args: argparse.Namespace, lang: str, applied) -> None:
    """Record how `output` was predicted, so that its answers can be told apart from another precision's."""
    from ofa_core.inference.loading import model_directory

    metadata = {"model": str(model_directory(args.model).resolve()), "task": args.task, "lang": lang,
                "precision": applied.precision, "requested_precision": applied.requested, "backend": args.backend,
                "generation": _assignments(args.generation, "--generation", "max_new_tokens=20", parse_json=True)}
    metadata_path(output).write_bytes(orjson.dumps(metadata, option=orjson.OPT_INDENT_2) + b"\n")


def _check_resumed_precision(output: Path, precision: str) -> None:
    """A file is completed in the precision it was started in: mixed answers could not be told apart."""
    path = metadata_path(output)
    if not path.is_file():
        return
    recorded = orjson.loads(path.read_bytes()).get("requested_precision")
    if recorded and recorded != precision:
        raise OFAError(f"--resume: {output} was predicted with --precision {recorded} ({path}); pass --precision "
                       f"{recorded} to complete it, or --overwrite to start again in {precision}")


def _strict_row(where: str, why: str) -> None:
    raise OFAError(f"{where}: {why}; fix or remove the row, or drop --strict to skip bad rows")


def _ignore(where: str, why: str) -> None:
    """Bad TSV rows are reported by rank 0 only."""


def _bad(source: str, reason: str, strict: bool) -> int:
    """Report an unreadable image (1 skipped), or stop with `--strict`."""
    if strict:
        raise OFAError(f"{source}: {reason}; fix or remove it, or drop --strict to skip unreadable images")
    logger.warning("skipped %s: %s", source, reason)
    return 1


def _image_problem(record: dict) -> str | None:
    """Why the record's image cannot be fully decoded (verify reads only headers), or None if it can."""
    import io

    from PIL import Image

    image = record.get("image")
    if image is None:
        return None
    try:
        with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as opened:
            opened.load()
    except Exception as error:  # noqa: BLE001 - any decoding failure makes the image unusable
        return f"not a readable image ({error.__class__.__name__}: {error})"
    return None


def _predict_batch(predictor, batch: list[dict], strict: bool) -> tuple[list[dict], int]:
    """(rows, images skipped). An image that passed verification but fails to decode fails its whole batch;
    the records are then retried one by one and the undecodable ones reported."""
    try:
        return predictor(batch), 0
    except OFAError:
        raise
    except Exception:
        if not any(_image_problem(record) for record in batch):
            raise  # not an image problem
    rows, skipped = [], 0
    for record in batch:
        problem = _image_problem(record)
        if problem:
            skipped += _bad(_source(record), problem, strict)
        else:
            rows += predictor([record])
    return rows, skipped


def _source(record: dict) -> str:
    image = record.get("image")
    return image if isinstance(image, str) else f"id {record.get('id')!r}"


def _write(stream, rows: list[dict]) -> int:
    for row in rows:
        stream.write(orjson.dumps(row, default=str) + b"\n")
    stream.flush()
    return len(rows)


class _Progress:
    """A tqdm bar with ETA on a terminal; otherwise a line every `every` images or 30 s: done/total, images/s, ETA."""

    SECONDS = 30.0

    def __init__(self, total: int, every: int, label: str, active: bool) -> None:
        self.total, self.every, self.label, self.active = total, every, label, active
        self.done = self.reported = 0
        self.started = self.last = time.monotonic()
        self.bar = None
        if active and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"{label}predict", unit="image", file=sys.stderr, dynamic_ncols=True)

    def update(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if self.active and (self.done - self.reported >= self.every or now - self.last >= self.SECONDS):
            self.reported, self.last = self.done, now
            rate = self.done / max(now - self.started, 1e-9)
            eta = datetime.timedelta(seconds=round((self.total - self.done) / rate)) if rate else "?"
            print(f"{self.label}predict: {self.done}/{self.total} images, {rate:.2f} images/s, ETA {eta}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
