"""Batch prediction over inputs to JSON lines: what `ofa predict` runs once its command line is parsed.

Each input becomes a record (`id`, `image` and any given fields; no image: a text-only record, and no input
at all: one record of the fields). A converted official checkpoint's `ofa_task.json` supplies the task,
language, prompt type and options the user leaves out. Inputs are listed first (ids checked unique, nothing
decoded), then each process (one, or several under torchrun) predicts its share, verifying every image before
batching; unreadable images are skipped and reported (`strict`: an error). Rows go to part files merged into
the output in input order at the end (`part_files`), so an existing file is never half-overwritten, and
`resume` predicts only the ids the output (or an interrupted run's parts) lacks. The precision is recorded
next to the output in `FILE.meta.json`. See docs/predict.md.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core._errors import OFAError
from ofa_core.inference import part_files
from ofa_core.inference.inputs import entries, load, quiet_entries, unique_ids
from ofa_core.inference.task_choice import choose_task
from ofa_core.model.task_config import read_checkpoint_task

logger = logging.getLogger(__name__)


@attrs.frozen
class PredictJob:
    """What to predict and where to write it: `ofa predict`'s arguments, parsed."""

    inputs: list[str]
    model: Path
    task: str | None = None
    lang: str | None = None
    prompt_type: str | None = None
    fields: dict = attrs.field(factory=dict)
    options: dict = attrs.field(factory=dict)
    generation: dict = attrs.field(factory=dict)
    output: Path | None = None
    overwrite: bool = False
    resume: bool = False
    strict: bool = False
    batch_size: int = 8
    device: str | None = None
    precision: str = "fp32"
    backend: str = "torch"
    progress_every: int = 1000


@attrs.define
class _Run:
    """One process's view of a job: the chosen task, every input id in order, and what is already done."""

    job: PredictJob
    processes: part_files.Processes
    task: Any
    prompt: Any
    options: Any
    ids: list[str]
    done: set[str]
    tag: str = ""
    leftovers: list[Path] = attrs.field(factory=list)
    salvaged: list[tuple[int, bytes]] = attrs.field(factory=list)

    @property
    def order(self) -> dict[str, int]:
        return {key: index for index, key in enumerate(self.ids)}


def predict(job: PredictJob, registry: Any) -> int:
    """Predict every input of `job` with the tasks of `registry`, on this process and its torchrun peers."""
    processes = part_files.Processes()
    _check_job(job, processes)
    recorded = read_checkpoint_task(job.model)
    task, prompt, options = choose_task(
        registry,
        job.task,
        job.lang,
        job.options,
        caller="predict",
        lang_name="--lang",
        options_name="--option",
        prompt_type=job.prompt_type,
        checkpoint=recorded,
        task_name="--task",
    )
    job = attrs.evolve(job, task=job.task or recorded.task)
    # List every input (cheap: no image is opened) on every process: ids, their order and what is already done.
    bad_rows = _strict_row if job.strict else (None if processes.main else _ignore)
    ids = list(unique_ids(entries(job.inputs, job.fields, bad_rows)))
    done: set[str] = set()
    if job.resume and job.output.exists():
        done = {row["id"] for _, row in part_files.output_rows(job.output, lenient_tail=True)}
    run = _Run(job, processes, task, prompt, options, ids, done)
    reporter = logging.StreamHandler(sys.stderr)
    reporter.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(reporter)
    processes.start()
    try:
        code = _predict(run)
    except BaseException:
        processes.stop(together=False)
        raise
    finally:
        logger.removeHandler(reporter)
    processes.stop()
    return code


def _check_job(job: PredictJob, processes: part_files.Processes) -> None:
    """The output and resume settings agree, and the model directory exists."""
    if job.batch_size < 1 or job.progress_every < 1:
        raise OFAError("--batch-size and --progress-every must be at least 1")
    output = job.output
    if output is None and (processes.size > 1 or job.resume):
        raise OFAError(
            "--output FILE is needed " + ("to --resume" if job.resume else f"with {processes.size} processes")
        )
    if job.resume and job.overwrite:
        raise OFAError("--resume keeps the rows of --output and --overwrite replaces them; pass one of them")
    if output is not None and output.exists() and not (job.overwrite or job.resume):
        raise OFAError(
            f"{output}: already exists; pass --overwrite to replace it, --resume to complete it, or choose another "
            f"--output"
        )
    if job.resume and output is not None:
        _check_resumed_precision(output, job.precision)
    if not job.model.is_dir():
        raise OFAError(f"{job.model}: --model: no such directory")


def _salvage(run: _Run) -> None:
    """Take over the rows an interrupted run left in its part files (with resume), and say what is left to do."""
    job, processes = run.job, run.processes
    run.tag = part_files.run_tag(processes) if job.output is not None else ""
    run.leftovers = part_files.leftover_parts(job.output, run.tag) if job.output is not None else []
    run.salvaged = part_files.salvaged_rows(run.leftovers, run.order, run.done) if job.resume else []
    run.done |= {run.ids[index] for index, _ in run.salvaged}
    if processes.main and job.resume:
        remaining = sum(1 for key in run.ids if key not in run.done)
        print(
            f"resume: {len(run.ids) - remaining} of {len(run.ids)} inputs already predicted ({len(run.salvaged)} of "
            f"them in an interrupted run's part files); {remaining} to go",
            file=sys.stderr,
        )


def _load_predictor(run: _Run) -> tuple[Any, Any]:
    """The Predictor for the job's task and the precision the model loaded in."""
    job = run.job
    from ofa_core.inference.loading import load_for_inference, quiet_transformers  # torch: only once there is work
    from ofa_core.inference.predictor import Predictor

    quiet_transformers()
    device = run.processes.device(job.device) if job.backend == "torch" else job.device
    loaded = load_for_inference(job.model, job.precision, device, backend=job.backend)
    if loaded.precision.notice and run.processes.main:
        print(loaded.precision.notice, file=sys.stderr)
    predictor = Predictor(loaded.model, loaded.processor, run.task, run.prompt, run.options, job.generation)
    if job.output is not None and run.processes.main:
        _write_metadata(job, run.prompt.lang, loaded.precision)
    return predictor, loaded.precision


def _predict(run: _Run) -> int:
    job, processes = run.job, run.processes
    _salvage(run)
    predictor, precision = _load_predictor(run)
    started = time.perf_counter()
    written, skipped = _predict_share(run, predictor)
    totals = processes.gather((written, skipped))  # waits for every process to finish its share
    if not processes.main:
        return 0
    written, skipped = (sum(values) for values in zip(*totals))
    if job.output is not None:
        parts = [part_files.part_path(job.output, run.tag, rank) for rank in range(processes.size)]
        kept = job.output if job.resume and job.output.exists() else None
        part_files.merge(job.output, kept, parts, run.salvaged, run.order)
        for leftover in run.leftovers:
            leftover.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    print(
        f"{written} images in {seconds:.1f} s ({written / max(seconds, 1e-9):.2f} images/s, model loading excluded); "
        f"{skipped} skipped; precision {precision.precision}",
        file=sys.stderr,
    )
    if job.output is not None:
        print(f"wrote {job.output}", file=sys.stderr)
    return 0


def _predict_share(run: _Run, predictor: Any) -> tuple[int, int]:
    """Predict this process's inputs in batches into its part file (stdout without an output); (written, skipped)."""
    job, processes = run.job, run.processes
    mine = sum(1 for index, key in enumerate(run.ids) if processes.owns(index) and key not in run.done)
    part = part_files.part_path(job.output, run.tag, processes.rank) if job.output is not None else None
    stream = part.open("wb") if part is not None else sys.stdout.buffer
    label = f"rank 0 of {processes.size}: " if processes.size > 1 else ""
    progress = _Progress(mine, job.progress_every, label, processes.main)
    written = skipped = 0
    try:
        batch: list[dict] = []
        wanted = (
            entry
            for index, entry in enumerate(quiet_entries(job.inputs, job.fields))
            if processes.owns(index) and entry.id not in run.done
        )
        for entry in wanted:
            try:
                batch.append(load(entry))
            except ValueError as error:
                skipped += _bad(entry.source, str(error), job.strict)
                progress.update(1)
            if len(batch) == job.batch_size:
                rows, bad = _predict_batch(predictor, batch, job.strict)
                written, skipped = written + _write(stream, rows), skipped + bad
                progress.update(len(batch))
                batch = []
        if batch:
            rows, bad = _predict_batch(predictor, batch, job.strict)
            written, skipped = written + _write(stream, rows), skipped + bad
            progress.update(len(batch))
    finally:
        progress.close()
        if part is not None:
            stream.close()
    return written, skipped


def metadata_path(output: Path) -> Path:
    """Where the settings of the run that wrote `output` are kept: `FILE.meta.json` beside it."""
    return output.with_name(output.name + ".meta.json")


def _write_metadata(job: PredictJob, lang: str, applied: Any) -> None:
    """Record how the output was predicted, so that its answers can be told apart from another precision's."""
    from ofa_core.inference.loading import model_directory

    metadata = {
        "model": str(model_directory(job.model).resolve()),
        "task": job.task,
        "lang": lang,
        "precision": applied.precision,
        "requested_precision": applied.requested,
        "backend": job.backend,
        "generation": job.generation,
    }
    metadata_path(job.output).write_bytes(orjson.dumps(metadata, option=orjson.OPT_INDENT_2) + b"\n")


def _check_resumed_precision(output: Path, precision: str) -> None:
    """A file is completed in the precision it was started in: mixed answers could not be told apart."""
    path = metadata_path(output)
    if not path.is_file():
        return
    recorded = orjson.loads(path.read_bytes()).get("requested_precision")
    if recorded and recorded != precision:
        raise OFAError(
            f"--resume: {output} was predicted with --precision {recorded} ({path}); pass --precision "
            f"{recorded} to complete it, or --overwrite to start again in {precision}"
        )


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
    except Exception as error:
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
            print(
                f"{self.label}predict: {self.done}/{self.total} images, {rate:.2f} images/s, ETA {eta}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
