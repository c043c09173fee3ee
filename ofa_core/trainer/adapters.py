"""`run` / `evaluate` for recipes: build the Trainer's parts from a resolved recipe, then call it.

Everything task-specific comes from the registry (reader, prompt, preprocess, loss, metrics,
generation, postprocess); the Trainer itself never sees a recipe.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core.data import RecordEncoder, encode_records
from ofa_core.errors import OFAError
from ofa_core.generation.defaults import generation_config_from, special_token_ids
from ofa_core.modeling import OFAForConditionalGeneration
from ofa_core.processing import OFAProcessor
from ofa_core.recipe import Recipe, Resolved, resolve
from ofa_core.registry import Registry
from ofa_core.trainer.checkpointing import NoModelError, model_directory
from ofa_core.trainer.distributed import gather_objects, init_world
from ofa_core.trainer.loop import Trainer


def _load(directory: str | Path, overrides: dict) -> tuple[OFAForConditionalGeneration, OFAProcessor]:
    """A model directory, or a run directory's best (else newest) checkpoint, with its processor."""
    directory = model_directory(directory)
    try:
        processor = OFAProcessor.from_pretrained(directory)
    except (OSError, ValueError) as err:
        raise OFAError(f"{directory}: no processor (tokenizer + image processor) saved with the model ({err}); "
                       f"convert with `ofa convert` or save one with processor.save_pretrained") from None
    return OFAForConditionalGeneration.from_pretrained(directory, **overrides), processor


def _examples(recipe: Recipe, resolved: Resolved, processor: OFAProcessor, split: str) -> list:
    data = recipe.spec.data
    encoder = RecordEncoder(processor.tokenizer, resolved.prompt, data.max_source_length, data.max_target_length)
    records = resolved.reader.open(resolved.reader_options, split)
    return encode_records(records, encoder, split, resolved.task.preprocess, resolved.task_options)


def _trainer(recipe: Recipe, resolved: Resolved, model, processor, splits: dict[str, str], **changes) -> Trainer:
    config = recipe.training
    if recipe.spec.data.num_workers:
        changes.setdefault("dataloader_num_workers", recipe.spec.data.num_workers)
    config = attrs.evolve(config, **changes) if changes else config
    task = resolved.task
    postprocess = None
    if task.postprocess is not None:
        postprocess = lambda text, record: task.postprocess(text, record, resolved.task_options)  # noqa: E731
    return Trainer(
        model, config, processor,
        train_examples=_examples(recipe, resolved, processor, splits["train"]) if "train" in splits else (),
        eval_examples=_examples(recipe, resolved, processor, splits["eval"]) if "eval" in splits else (),
        loss_fn=resolved.loss.build(resolved.loss_options),
        metrics={name: functools.partial(spec.build, options) for name, spec, options in resolved.metrics},
        higher_is_better={name: spec.higher_is_better for name, spec, _ in resolved.metrics},
        generation_config=generation_config_from(resolved.generation, **special_token_ids(model.config)),
        postprocess=postprocess,
        closed_set=resolved.closed_set,
        world=init_world(),
    )


def run(recipe: Recipe, registry: Registry) -> dict[str, Any]:
    """Train as the recipe says (evaluating on 'valid' when `eval_strategy` is set); returns the run summary."""
    resolved = resolve(recipe, registry)
    try:
        model, processor = _load(recipe.spec.model.checkpoint, recipe.spec.model.overrides)
    except NoModelError as error:
        raise recipe.missing(f"model.checkpoint: {error}") from None
    splits = {"train": "train"}
    if recipe.training.eval_strategy != "no":
        splits["eval"] = "valid"
    return _trainer(recipe, resolved, model, processor, splits).train()


def evaluate(recipe: Recipe, registry: Registry, checkpoint: str | Path, split: str = "valid") -> dict[str, Any]:
    """Generate on `split` with the checkpoint and score it: the metrics (top level), plus the predictions file."""
    resolved = resolve(recipe, registry)
    checkpoint = model_directory(checkpoint)
    model, processor = _load(checkpoint, recipe.spec.model.overrides)
    trainer = _trainer(recipe, resolved, model, processor, {"eval": split})
    rows: list[dict] = []
    scores, _ = trainer.evaluate(predictions=rows)
    rows = [row for part in gather_objects(rows, trainer.world) for row in part]
    out = Path(recipe.training.output_dir) / f"predictions-{split}-{Path(checkpoint).name}.jsonl"
    if trainer.world.is_main:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows))
    return {**scores, "checkpoint": str(checkpoint), "split": split, "examples": len(rows), "predictions": str(out)}
