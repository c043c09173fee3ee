"""Evaluation: generate for every task's examples (split across processes), score them, merge the scores.

The trainer evaluates during training and `from_recipe.evaluate` without training, through the same
`Evaluator`; a metric's state is summed across processes (`merge_states`) before it computes, so every
process gets the same scores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import orjson
import torch

from ofa_core._errors import OFAError
from ofa_core.data import Collator, Example, GroupDataset, epoch_batches, group_examples
from ofa_core.generation.closed_set import AllowedTokens, ClosedSetDecoder, decode_batch
from ofa_core.model.precision import DTYPE_NAMES
from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer.distributed import World, gather_objects
from ofa_core.trainer.tasks import TaskParts


def autocast(config: TrainingConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """The training precision's autocast on `device` ('bf16', 'fp16'), or nothing."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.mixed_precision)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def loader_generator() -> torch.Generator:
    """A DataLoader draws a seed when iterated; from its own generator, so the model's RNG stream
    (dropout) does not depend on where epochs start, which resume equality needs."""
    return torch.Generator().manual_seed(0)


def merge_states(states: Sequence[dict]) -> dict:
    """Sum-merge metric states: numbers add, lists concatenate."""
    merged = dict(states[0])
    for state in states[1:]:
        for key, value in state.items():
            merged[key] = merged[key] + value if key in merged else value
    return merged


def _shown(value: Any) -> str:
    """A prediction or reference as a sample line shows it: text as it is, a structured value (a box) as JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class Evaluator:
    """Scores a model on each task's evaluation examples with the task's search, postprocess and metrics."""

    def __init__(
        self,
        tasks: Sequence[TaskParts],
        config: TrainingConfig,
        processor: Any,
        world: World,
        device: torch.device,
        collator: Collator,
        decoders: Sequence[ClosedSetDecoder | None],
        allowed: Sequence[AllowedTokens | None],
    ) -> None:
        self.tasks, self.config, self.processor, self.world, self.device = tasks, config, processor, world, device
        self.collator, self.decoders, self.allowed = collator, decoders, allowed
        self.score_directions: dict[str, bool] = {}  # score key (e.g. 'cider') -> its metric's direction

    def precision(self, model: torch.nn.Module) -> str:
        """What evaluation computes in, as its records state it: the training precision's autocast
        ('bf16-autocast'), else the weights' own ('fp32', 'bf16', 'fp16')."""
        if self.config.mixed_precision != "no":
            return f"{self.config.mixed_precision}-autocast"
        dtype = next(model.parameters()).dtype
        return next((mode for mode, name in DTYPE_NAMES.items() if getattr(torch, name) == dtype), str(dtype))

    def _decode(
        self, model: torch.nn.Module, batch: dict, index: int, rank_all: bool = False
    ) -> tuple[list[str], list | None]:
        """Stripped generated texts, plus each example's (answer, score) ranking when a closed set ranks: its top-k,
        or with `rank_all` every answer."""
        task = self.tasks[index]
        with autocast(self.config, self.device):
            decoded = decode_batch(
                model,
                batch,
                task.generation_config,
                self.processor.tokenizer,
                self.decoders[index],
                self.allowed[index],
                rank_all,
            )
        rankings = [d.ranking for d in decoded] if decoded and decoded[0].ranking else None
        return [d.text for d in decoded], rankings

    @torch.no_grad()
    def evaluate(
        self,
        model: torch.nn.Module,
        examples: Sequence[Example] | None = None,
        return_samples: int = 0,
        predictions: list | None = None,
    ) -> tuple[dict[str, float], list[str]]:
        """Generate with `model` (in eval mode) for every example of every task (split across processes), update
        each task's metrics, merge
        their states.

        Returns the scores (identical on every process; `<label>/<score>` in a mixture, plus `weighted` when
        `metric_for_best_model` weighs several scores) and up to `return_samples` lines of 'id: prediction |
        references' per task from rank 0. `examples` replaces a single task's evaluation examples. With
        `predictions`, this process's `{"id", "prediction", "references"}` rows are appended to it (plus, for a
        closed set, `ranking`: every answer with its summed log-probability, best first, and `task`, the task's
        label, in a mixture).
        """
        if examples is not None and len(self.tasks) > 1:
            raise ValueError(
                "evaluate(examples=...) replaces the examples of a single task; a mixture evaluates each task's own"
            )
        scores: dict[str, float] = {}
        samples: list[str] = []
        dropped = 0.0
        for index, task in enumerate(self.tasks):
            task_examples = task.eval_examples if examples is None else examples
            if not task_examples and len(self.tasks) > 1:
                continue
            task_scores, task_samples = self._evaluate_task(model, index, task_examples, return_samples, predictions)
            dropped += task_scores.pop("dropped")
            prefix = f"{task.label}/" if task.label else ""
            scores.update({f"{prefix}{key}": value for key, value in task_scores.items()})
            samples += [f"[{task.label}] {line}" if task.label else line for line in task_samples]
        scores["dropped"] = dropped
        weights = self.config.metric_for_best_model
        if isinstance(weights, dict):
            missing = [name for name in weights if name not in scores]
            if missing:
                raise OFAError(
                    f"training.metric_for_best_model: no score named {', '.join(missing)} "
                    f"(scores: {', '.join(key for key in scores if key != 'dropped')})"
                )
            scores["weighted"] = sum(weight * scores[name] for name, weight in weights.items())
        return scores, samples

    def _evaluate_task(
        self,
        model: torch.nn.Module,
        index: int,
        examples: Sequence[Example],
        return_samples: int,
        predictions: list | None,
    ) -> tuple[dict[str, float], list[str]]:
        """One task's scores (unprefixed, with `dropped`) and sample lines."""
        task, world = self.tasks[index], self.world
        metrics = {name: factory() for name, factory in task.metrics.items()}
        samples, dropped = [], 0
        for batch in self._loader(examples):
            dropped += batch["num_dropped"]
            if "input_ids" not in batch:
                continue
            batch = to_device(batch, self.device)
            texts, rankings = self._decode(model, batch, index, rank_all=predictions is not None)
            found = [task.postprocess(text, example.record) for text, example in zip(texts, batch["examples"])]
            references = [list(example.references) for example in batch["examples"]]
            top_k = task.closed_set.top_k if task.closed_set is not None else 1
            for metric in metrics.values():
                metric.update(found, references)
                if rankings and top_k > 1 and hasattr(metric, "update_rankings"):
                    metric.update_rankings(
                        [[answer for answer, _ in ranking[:top_k]] for ranking in rankings], references
                    )
            if predictions is not None:
                predictions.extend(_prediction_rows(task.label, batch["examples"], found, references, rankings))
            samples.extend(
                f"{e.id}: {_shown(p)} | {' / '.join(map(_shown, r[:2]))}"
                for e, p, r in zip(batch["examples"], found, references)
            )
        scores: dict[str, float] = {}
        prefix = f"{task.label}/" if task.label else ""
        for name, metric in metrics.items():
            metric.load_state(merge_states(gather_objects(metric.state(), world)))
            computed = metric.compute()
            scores.update(computed)
            self.score_directions.update(
                dict.fromkeys((f"{prefix}{key}" for key in computed), task.higher_is_better.get(name, True))
            )
        scores["dropped"] = float(sum(gather_objects(dropped, world)))
        return scores, samples[:return_samples]

    def _loader(self, examples: Sequence[Example]) -> torch.utils.data.DataLoader:
        """This process's share of the split, in order, one image group after another."""
        config, world = self.config, self.world
        groups = group_examples(examples, by_image=False)
        dataset = GroupDataset(examples, groups, self.processor.image_processor, config.bad_images)
        batches = epoch_batches(
            groups, config.per_device_eval_batch_size, world.size, world.rank, 0, 0, shuffle=False, drop_last=False
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=batches,
            collate_fn=self.collator,
            num_workers=config.dataloader_num_workers,
            generator=loader_generator(),
        )


def _prediction_rows(
    label: str, examples: Sequence[Example], found: list, references: list[list], rankings: list | None
) -> list[dict]:
    """The predictions file's rows of a batch: id, prediction, references, the ranking of a closed set, the task."""
    rows = [{"id": e.id, "prediction": p, "references": r} for e, p, r in zip(examples, found, references)]
    for row, ranking in zip(rows, rankings or ()):
        row["ranking"] = [{"answer": answer, "score": score} for answer, score in ranking]
    return [{"task": label, **row} for row in rows] if label else rows
