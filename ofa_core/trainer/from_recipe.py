"""`train` / `evaluate` a resolved recipe: build the Trainer's parts from it, then call it.

Everything task-specific comes from the resolved components (reader, prompt, preprocess, loss,
metrics, generation, postprocess); the Trainer itself never sees a recipe.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core.data import RecordEncoder, encode_records
from ofa_core.generation.settings import generation_config
from ofa_core.inference.loading import NoModelError, load_model, model_directory
from ofa_core.model.search import special_token_ids
from ofa_core.recipe import Recipe, Resolved
from ofa_core.trainer.distributed import gather_objects, init_world
from ofa_core.trainer.loop import Trainer


def _examples(recipe: Recipe, resolved: Resolved, processor: Any, split: str) -> list:
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
        generation_config=generation_config(resolved.generation, **special_token_ids(model.config)),
        postprocess=postprocess,
        closed_set=resolved.closed_set,
        world=init_world(),
    )


def train(recipe: Recipe, resolved: Resolved) -> dict[str, Any]:
    """Train as the recipe says (evaluating on 'valid' when `eval_strategy` is set); returns the run summary."""
    try:
        model, processor = load_model(recipe.spec.model.checkpoint, recipe.spec.model.overrides)
    except NoModelError as error:
        raise recipe.missing(f"model.checkpoint: {error}", Path(recipe.spec.model.checkpoint)) from None
    splits = {"train": "train"}
    if recipe.training.eval_strategy != "no":
        splits["eval"] = "valid"
    return _trainer(recipe, resolved, model, processor, splits).train()


def evaluate(recipe: Recipe, resolved: Resolved, checkpoint: str | Path, split: str = "valid") -> dict[str, Any]:
    """Generate on `split` with the checkpoint (a model or run directory) and score it: the metrics (top level),
    plus the predictions file."""
    checkpoint = model_directory(checkpoint)
    model, processor = load_model(checkpoint, recipe.spec.model.overrides)
    trainer = _trainer(recipe, resolved, model, processor, {"eval": split})
    rows: list[dict] = []
    scores, _ = trainer.evaluate(predictions=rows)
    rows = [row for part in gather_objects(rows, trainer.world) for row in part]
    out = Path(recipe.training.output_dir) / f"predictions-{split}-{Path(checkpoint).name}.jsonl"
    if trainer.world.is_main:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows))
    return {**scores, "checkpoint": str(checkpoint), "split": split, "examples": len(rows), "predictions": str(out)}
