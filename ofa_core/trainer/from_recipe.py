"""`train` / `evaluate` a resolved recipe: build the Trainer's parts from it, then call it.

Everything task-specific comes from the resolved components (reader, prompt, preprocess, loss,
metrics, generation, postprocess); the Trainer itself never sees a recipe.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
import torch

from ofa_core._errors import OFAError
from ofa_core.data import RecordEncoder, encode_records
from ofa_core.generation.settings import generation_config
from ofa_core.inference import machine
from ofa_core.inference.loading import NoModelError, default_device, load_for_inference, load_model, model_directory
from ofa_core.model.precision import apply as apply_precision
from ofa_core.model.search import special_token_ids
from ofa_core.plugin._scores import score_rows
from ofa_core.recipe import Recipe, Resolved
from ofa_core.recipe.resolution import registered_metric
from ofa_core.trainer import peft
from ofa_core.trainer.distributed import gather_objects, init_world
from ofa_core.trainer.loop import Trainer
from ofa_core.trainer.reporting import log_evaluation
from ofa_core.trainer.tasks import TaskParts, mixture_probabilities


def _examples(resolved: Resolved, processor: Any, split: str) -> list:
    data = resolved.data
    encoder = RecordEncoder(processor.tokenizer, resolved.prompt, data.max_source_length, data.max_target_length)
    records = resolved.reader.open(resolved.reader_options, split)
    return encode_records(records, encoder, split, resolved.task.preprocess, resolved.task_options)


def _task_parts(resolved: Resolved, model: Any, processor: Any, splits: dict[str, str], base: Path) -> TaskParts:
    task = resolved.task
    postprocess = None
    if task.postprocess is not None:
        postprocess = functools.partial(_postprocess, task.postprocess, options=resolved.task_options)
    return TaskParts(
        label=resolved.label,
        train_examples=_examples(resolved, processor, splits["train"]) if "train" in splits else (),
        eval_examples=_examples(resolved, processor, splits["eval"]) if "eval" in splits else (),
        loss_fn=resolved.loss.build(resolved.loss_options) if resolved.loss is not None else None,
        metrics={name: functools.partial(spec.build, options) for name, spec, options in resolved.metrics},
        higher_is_better={name: spec.higher_is_better for name, spec, _ in resolved.metrics},
        generation_config=generation_config(resolved.generation, **special_token_ids(model.config)),
        postprocess=postprocess,
        closed_set=resolved.closed_set,
        allowed_tokens=task.allowed_tokens(resolved.task_options, processor.tokenizer) if task.allowed_tokens else None,
        probability=resolved.weight,
        build_metric=functools.partial(registered_metric, resolved.registered_metrics, base),
    )


def _postprocess(function: Any, text: str, record: dict, options: Any) -> Any:
    return function(text, record, options)


def _trainer(
    recipe: Recipe,
    tasks: Sequence[Resolved],
    model,
    processor,
    splits: dict[str, str],
    plan: peft.PeftPlan | None = None,
    **changes,
) -> Trainer:
    workers = max(resolved.data.num_workers for resolved in tasks)
    if workers:
        changes.setdefault("dataloader_num_workers", workers)
    config = attrs.evolve(recipe.training, **changes) if changes else recipe.training
    parts = [_task_parts(resolved, model, processor, splits, recipe.base_dir) for resolved in tasks]
    if "train" in splits and len(parts) > 1:
        probabilities = mixture_probabilities(
            [part.probability for part in parts],
            [len(part.train_examples) for part in parts],
            recipe.spec.mixture.temperature,
        )
        for part, probability in zip(parts, probabilities):
            part.probability = probability
    return Trainer(model, config, processor, tasks=parts, world=init_world(), peft=plan)


def train(recipe: Recipe, tasks: Sequence[Resolved]) -> dict[str, Any]:
    """Train as the recipe says (evaluating on 'valid' when `eval_strategy` is set); returns the run summary.

    With a `peft` section only the method's parameters train and checkpoints are deltas over the start model."""
    torch.manual_seed(recipe.training.seed)  # the modules a peft method adds start from the run's seed
    try:
        chosen = peft.plan(recipe)
        overrides = {**recipe.spec.model.overrides, **(chosen.model_config if chosen else {})}
        model, processor = load_model(recipe.spec.model.checkpoint, overrides)
    except NoModelError as error:
        raise recipe.missing(f"model.checkpoint: {error}", Path(recipe.spec.model.checkpoint)) from None
    if chosen is not None:
        chosen.attach(model)
    splits = {"train": "train"}
    if recipe.training.eval_strategy != "no":
        splits["eval"] = "valid"
    return _trainer(recipe, tasks, model, processor, splits, plan=chosen).train()


def prediction_files(
    recipe: Recipe, tasks: Sequence[Resolved], checkpoint: str | Path, split: str, path: str | Path | None = None
) -> dict[str, Path]:
    """Where `evaluate` writes each task's predictions: `path` (`<stem>-<label>.jsonl` beside it per task of a
    mixture), by default `<output_dir>/predictions-<split>-<checkpoint name>.jsonl`."""
    chosen = (
        Path(path)
        if path is not None
        else Path(recipe.training.output_dir) / f"predictions-{split}-{Path(checkpoint).name}.jsonl"
    )
    stem = chosen.with_suffix("") if chosen.suffix == ".jsonl" else chosen
    labels = [resolved.label for resolved in tasks]
    if labels == [""]:
        return {"": chosen}
    return {label: stem.with_name(f"{stem.name}-{label}.jsonl") for label in labels}


def refuse_existing(files: dict[str, Path], option: str = "--predictions") -> None:
    """An existing predictions file is kept: evaluating again must not silently replace it."""
    for path in files.values():
        if path.exists():
            raise OFAError(
                f"{path}: {option}: the file exists; pass --overwrite to replace it, or another {option} path"
            )


def _write_rows(path: Path, rows: list[dict]) -> None:
    """All rows or none: a partial file never replaces a complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows))
    partial.replace(path)


def evaluate(
    recipe: Recipe,
    tasks: Sequence[Resolved],
    checkpoint: str | Path,
    split: str = "valid",
    report: bool = False,
    predictions_path: str | Path | None = None,
    overwrite: bool = True,
    precision: str = "fp32",
    backend: str = "torch",
) -> dict[str, Any]:
    """Generate on `split` with the checkpoint (a model or run directory) and score it: the metrics (top level),
    plus the predictions file (one per task in a mixture: `predictions` maps each label to its file; see
    `prediction_files`). Rows are `{"id", "prediction", "references"}`, plus `ranking` (every answer with its
    summed log-probability, best first) for a closed set, and the per-example `score` (with flags such as
    `correct`) of the task's first metric that gives one (`MetricSpec.example_score`, named in the meta file).
    Without `overwrite`, an existing file is refused before the model loads. `precision` (fp32, bf16, fp16, int8)
    is the inference mode, recorded with what was applied in the result and in each predictions file's
    `<file>.meta.json`.

    With `report` (`ofa eval`), rank 0 also records the scores as training does: a `"split": "eval"` line in
    `<output_dir>/log.jsonl` and, unless `training.report_to` is 'none', `eval/<score>` TensorBoard scalars under
    `<output_dir>/runs`, at the checkpoint's step (its trainer_state.json; 0 for a plain model directory)."""
    checkpoint = model_directory(checkpoint)
    files = prediction_files(recipe, tasks, checkpoint, split, predictions_path)
    if not overwrite:
        refuse_existing(files)
    model, processor, applied = _evaluated_model(recipe, checkpoint, precision, backend)
    # The numbers are computed in `precision` alone: the recipe's training precision (autocast) stays out.
    trainer = _trainer(recipe, tasks, model, processor, {"eval": split}, mixed_precision="no")
    if applied.notice and trainer.world.is_main:
        print(f"ofa: {applied.notice}", file=sys.stderr)
    rows: list[dict] = []
    scores, _ = trainer.evaluate(predictions=rows)
    rows = [row for part in gather_objects(rows, trainer.world) for row in part]
    if trainer.world.is_main:
        _write_predictions(files, tasks, rows, scores, _how_made(checkpoint, split, applied, backend))
    predictions = str(files[""]) if list(files) == [""] else {label: str(out) for label, out in files.items()}
    if report and trainer.world.is_main:
        log_evaluation(
            Path(recipe.training.output_dir),
            recipe.training.report_to,
            _checkpoint_step(Path(checkpoint)),
            scores,
            applied.precision,
            checkpoint=str(checkpoint),
            eval_split=split,
            examples=len(rows),
        )
    return {
        **scores,
        "checkpoint": str(checkpoint),
        "split": split,
        "examples": len(rows),
        "predictions": predictions,
        "precision": applied.precision,
    }


def _evaluated_model(recipe: Recipe, checkpoint: Path, precision: str, backend: str) -> tuple[Any, Any, Any]:
    """The model, processor and applied precision to evaluate: an exported folder's graphs behind the same search
    (docs/export.md) with `backend="onnxruntime"`, else the checkpoint in transformers at `precision`."""
    if backend == "onnxruntime":
        loaded = load_for_inference(checkpoint, precision, "cpu", backend=backend)
        return loaded.model, loaded.processor, loaded.precision
    model, processor = load_model(checkpoint, recipe.spec.model.overrides)
    model, applied = apply_precision(model, precision, default_device(), "--precision")
    return model, processor, applied


def _how_made(checkpoint: Path, split: str, applied: Any, backend: str) -> dict[str, Any]:
    """What each predictions file's meta file records of its making, so files made differently are told apart."""
    return {
        "checkpoint": str(checkpoint),
        "split": split,
        "precision": applied.precision,
        "requested_precision": applied.requested,
        "backend": backend,
        "machine": machine.describe(),
    }


def _write_predictions(
    files: dict[str, Path], tasks: Sequence[Resolved], rows: list[dict], scores: dict[str, Any], metadata: dict
) -> None:
    """Each task's rows with their per-example scores, and beside them `<file>.meta.json`: how they were made."""
    for label, out in files.items():
        resolved = next(resolved for resolved in tasks if resolved.label == label)
        task_rows = [row for row in rows if row.get("task", "") == label]
        source = score_rows(resolved.metrics, task_rows)
        _write_rows(out, task_rows)
        scored = {"score": attrs.asdict(source)} if source is not None else {}
        out.with_name(out.name + ".meta.json").write_bytes(
            orjson.dumps(
                {**metadata, "task": resolved.task_name, "scores": task_scores(scores, label), **scored},
                option=orjson.OPT_INDENT_2,
            )
            + b"\n"
        )


def task_scores(scores: dict[str, Any], label: str) -> dict[str, float]:
    """One task's numeric scores, unprefixed (`<label>/cider` -> `cider` in a mixture), without the counts."""
    prefix = f"{label}/" if label else ""
    return {
        key[len(prefix) :]: value
        for key, value in scores.items()
        if key.startswith(prefix) and key not in ("dropped", "weighted") and isinstance(value, (int, float))
    }


def _checkpoint_step(checkpoint: Path) -> int:
    """The step in the checkpoint's trainer_state.json; 0 for a model directory without one."""
    try:
        return int(orjson.loads((checkpoint / "trainer_state.json").read_bytes())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
