"""`Trainer`: the training loop every task shares, usable without recipes.

One optimizer step = `gradient_accumulation_steps` micro-batches on each process. Losses are
summed, gradients summed across processes, then divided by the step's global sample size
(fairseq's contract), so the update does not depend on how the step was split.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors.torch import load_file

from ofa_core._errors import OFAError
from ofa_core.data import Collator, Example, GroupDataset, group_examples
from ofa_core.data.grouping import Part, example_batches
from ofa_core.generation.closed_set import AllowedTokens, ClosedSetDecoder
from ofa_core.inference.loading import DELTA_CONFIG
from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.plugin import ClosedSet, LossContext, LossOutput, Metric
from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer import checkpointing as ckpt
from ofa_core.trainer import sharding
from ofa_core.trainer.cadence import due
from ofa_core.trainer.distributed import World, all_reduce_gradients, barrier, device_for, gather_objects, init_world
from ofa_core.trainer.encoder_cache import EncoderCache, open_cache
from ofa_core.trainer.evaluation import Evaluator, autocast, loader_generator, merge_states, to_device
from ofa_core.trainer.freezing import apply_freezing
from ofa_core.trainer.losses import label_smoothed_cross_entropy
from ofa_core.trainer.optim import build_optimizer, build_scheduler, scale_and_clip_, scaled_step
from ofa_core.trainer.reporting import Reporter
from ofa_core.trainer.state import TrainState
from ofa_core.trainer.tasks import LossFn, TaskParts, task_for_step
from ofa_core.trainer.timing import PhaseTimes, breakdown_line


def _say(world: World, text: str) -> None:
    if world.is_main:
        print(f"ofa: {text}", file=sys.stderr)


def _default_loss(output: Any, batch: dict, epsilon: float) -> LossOutput:
    """`Trainer`'s own loss when a task gives none: label-smoothed cross entropy with `training.label_smoothing`."""
    return label_smoothed_cross_entropy(
        output.logits, batch["labels"], epsilon, batch.get("constraint_mask"), batch.get("loss_weights")
    )


def _no_metric_registry(name: str, options: Mapping[str, Any]) -> Metric:
    raise OFAError(
        f"loss.reward: this trainer was given no metric registry to build '{name}' from; "
        f"set TaskParts.build_metric (runs from a recipe have it)"
    )


def _references_per_input(examples: Sequence[Example]) -> list[list[str]]:
    """The references of each distinct (image, source text), merged over its examples (one caption per row or all)."""
    merged: dict[tuple, dict[str, None]] = {}
    for example in examples:
        merged.setdefault((example.image_key, example.source_ids), {}).update(dict.fromkeys(example.references))
    return [list(references) for references in merged.values()]


def _unchanged(text: str, record: dict) -> str:
    return text


@attrs.define
class TrainingRun:
    """What `Trainer.train` sets up before its first step and changes as it steps: one object, so the trainer's
    own attributes are all set in `__init__` and a run's state is listed here."""

    freezing: Any = None
    trainable: list[torch.nn.Parameter] = attrs.field(factory=list)
    groups: list[list] = attrs.field(factory=list)
    encoder_caches: list[EncoderCache | None] = attrs.field(factory=list)
    encoder_cache: EncoderCache | None = None  # the stepping task's
    datasets: list[GroupDataset] = attrs.field(factory=list)
    epoch_cache: dict[int, tuple[int, list[list[Part]]]] = attrs.field(factory=dict)
    streams: list[Any] = attrs.field(factory=list)
    total_steps: int = 0
    probabilities: list[float] = attrs.field(factory=list)
    optimizer: Any = None
    scheduler: Any = None
    scaler: Any = None
    state: TrainState | None = None
    reporter: Reporter | None = None
    start_step: int = 0
    saved_at: int = -1
    last_metrics: dict = attrs.field(factory=dict)
    times: PhaseTimes | None = None


def _task_list(single: TaskParts, tasks: Sequence[TaskParts], label_smoothing: float) -> list[TaskParts]:
    """The mixture's tasks, or the one task given as keywords, each with a loss and a postprocess."""
    if tasks and single != TaskParts():
        raise ValueError("give the parts of one task as keyword arguments, or `tasks`, not both")
    chosen = list(tasks) or [single]
    if len({task.label for task in chosen}) != len(chosen) or (
        len(chosen) > 1 and not all(task.label for task in chosen)
    ):
        raise ValueError("the tasks of a mixture need distinct, non-empty labels")
    for task in chosen:
        task.loss_fn = task.loss_fn or functools.partial(_default_loss, epsilon=label_smoothing)
        task.postprocess = task.postprocess or _unchanged
    return chosen


class Trainer:
    """Trains and evaluates an OFA model on tokenized examples (see `ofa_core.data.encode_records`).

    One task's parts are given as keyword arguments (see `TaskParts` for their meaning), or several
    tasks as `tasks`: each step then trains on one task, drawn by the tasks' probabilities, and each
    evaluation scores every task with its own search and metrics (`<label>/<score>`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: TrainingConfig,
        processor: Any,
        *,
        train_examples: Sequence[Example] = (),
        eval_examples: Sequence[Example] = (),
        loss_fn: LossFn | None = None,
        metrics: dict[str, Callable[[], Metric]] | None = None,
        higher_is_better: dict[str, bool] | None = None,
        generation_config: Any = None,
        postprocess: Callable[[str, dict], Any] | None = None,
        closed_set: ClosedSet | None = None,
        tasks: Sequence[TaskParts] = (),
        world: World | None = None,
        peft: Any = None,
    ) -> None:
        self.world = world or init_world()
        self.peft = peft  # a trainer.peft.PeftPlan: only its parameters train, checkpoints are deltas
        self.device = device_for(self.world)
        if config.mixed_precision == "fp16" and self.device.type != "cuda":
            raise OFAError(
                "training.mixed_precision: fp16 needs a CUDA GPU (its GradScaler is CUDA-only); use 'bf16' or 'no' "
                "on CPU"
            )
        self.model = model.to(self.device)
        self.config = config
        self.processor = processor
        single = TaskParts(
            train_examples=train_examples,
            eval_examples=eval_examples,
            loss_fn=loss_fn,
            metrics=metrics or {},
            higher_is_better=higher_is_better or {},
            generation_config=generation_config,
            postprocess=postprocess,
            closed_set=closed_set,
        )
        self.tasks: list[TaskParts] = _task_list(single, tasks, config.label_smoothing)
        self.decoders = [
            ClosedSetDecoder(task.closed_set, processor.tokenizer) if task.closed_set else None for task in self.tasks
        ]
        self.allowed = [
            AllowedTokens(task.allowed_tokens, processor.tokenizer.eos_token_id)
            if task.allowed_tokens is not None
            else None
            for task in self.tasks
        ]
        self.output_dir = Path(config.output_dir)
        self.collator = Collator(model.config.pad_token_id, processor.image_processor.patch_image_size)
        self.evaluator = Evaluator(
            self.tasks, config, processor, self.world, self.device, self.collator, self.decoders, self.allowed
        )
        self.frozen_encoder = config.freeze_encoder
        self.sharded = bool(config.fsdp) and self.world.distributed
        self.model_class = type(model)
        self._loss_contexts: dict[int, LossContext] = {}
        self.run = TrainingRun(encoder_caches=[None] * len(self.tasks))

    # -- forward -------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.config, self.device)

    def _encode(self, batch: dict) -> OFAEncoderOutput:
        """One encoder pass per group, rows expanded to the decoder rows.

        No graph when nothing in the encoder trains. The shared word embedding is also the
        encoder's input embedding: while it trains, its gradient through the (frozen) encoder
        flows back through the shared pass, summed over the group, as per-caption passes would.
        """
        if self.run.encoder_cache is not None:
            out = self.run.encoder_cache.encode(batch, self._encoder_pass)
        else:
            encoder = self.model.get_encoder()
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")}
            needs_grad = any(p.requires_grad for p in encoder.parameters())
            with contextlib.nullcontext() if needs_grad else torch.no_grad():
                out = encoder(**inputs)
        index = batch["encoder_index"]
        if index.numel() == out.last_hidden_state.shape[0]:
            return out
        return OFAEncoderOutput(
            last_hidden_state=out.last_hidden_state.index_select(0, index),
            padding_mask=out.padding_mask.index_select(0, index),
            position_embeddings=out.position_embeddings.index_select(0, index),
        )

    @torch.no_grad()
    def _encoder_pass(self, inputs: dict[str, torch.Tensor]) -> OFAEncoderOutput:
        """The frozen encoder on `inputs` (moved to the device), under the run's autocast: the encoder cache's pass."""
        with self._autocast():
            return self.model.get_encoder()(**self._to_device(inputs))

    def _forward(self, batch: dict):
        if not self.sharded:
            return self.model(
                decoder_input_ids=batch["decoder_input_ids"], encoder_outputs=self._encode(batch), use_cache=False
            )
        # Sharded parameters are gathered only inside the root forward: no shared encoder pass here.
        index = batch["encoder_index"]
        inputs = {
            k: batch[k].index_select(0, index) for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")
        }
        return self.model(**inputs, decoder_input_ids=batch["decoder_input_ids"], use_cache=False)

    def _loss_context(self, index: int) -> LossContext:
        """What a loss with `drives_model` gets besides model and batch; built once per task."""
        if self.sharded:
            raise OFAError(
                "loss: a loss that runs the model itself (e.g. scst) cannot run under training.fsdp; "
                "set training.fsdp to false"
            )
        if index not in self._loss_contexts:
            examples = self.tasks[index].train_examples
            self._loss_contexts[index] = LossContext(
                tokenizer=self.processor.tokenizer,
                encode=self._encode,
                train_mode=self._train_mode,
                metric=self.tasks[index].build_metric or _no_metric_registry,
                train_references=functools.partial(_references_per_input, examples),
            )
        return self._loss_contexts[index]

    def _generation_model(self) -> torch.nn.Module:
        """The model to generate with, in eval mode. A sharded model is gathered into a plain copy on
        every process: each process generates a different number of steps, which per-layer
        all-gathers could not follow."""
        if not self.sharded:
            return self.model.eval()
        weights = sharding.full_model_state(self.model, everywhere=True)
        with torch.device("meta"):  # no random init: fast, and the RNG stream stays the training run's
            copy = self.model_class(self.model.config)
        copy.load_state_dict(weights, strict=False, assign=True)
        copy.tie_weights()
        copy.generation_config = self.model.generation_config
        return copy.to(self.device).eval()

    def _to_device(self, batch: dict) -> dict:
        return to_device(batch, self.device)

    def _train_mode(self) -> None:
        self.model.train()
        if self.frozen_encoder:
            self.model.get_encoder().eval()  # locked tower: no dropout, no BatchNorm statistic updates

    # -- one optimizer step --------------------------------------------------------------------------

    def _step(self, micro_batches: list[dict], index: int) -> dict[str, float]:
        """One optimizer step on micro-batches of task `index`; returns the step's totals over all processes."""
        task, decoder = self.tasks[index], self.decoders[index]
        self.run.encoder_cache = self.run.encoder_caches[index]
        self.run.optimizer.zero_grad(set_to_none=True)
        local = {"sample_size": 0.0, "loss_sum": 0.0, "num_dropped": 0.0, "nsamples": 0.0}
        for batch in micro_batches:
            local["num_dropped"] += batch["num_dropped"]
            if "input_ids" not in batch:
                continue
            with self.run.times.phase("forward"):
                batch = self._to_device(batch)
                if decoder is not None and decoder.closed_set.restrict_loss:
                    batch["constraint_mask"] = decoder.constraint_mask(batch["decoder_input_ids"], batch["labels"])
                if getattr(task.loss_fn, "drives_model", False):
                    with self._autocast():
                        loss = task.loss_fn(self.model, batch, self._loss_context(index))
                else:
                    with self._autocast():
                        output = self._forward(batch)
                    loss = task.loss_fn(output, batch)
            with self.run.times.phase("backward"):
                (self.run.scaler.scale(loss.loss_sum) if self.run.scaler else loss.loss_sum).backward()
            local["sample_size"] += loss.sample_size
            local["loss_sum"] += float(loss.loss_sum.detach())
            local["nsamples"] += len(batch["examples"])
            for key, value in loss.logs.items():
                if key != "loss":
                    local[key] = local.get(key, 0.0) + value
        with self.run.times.phase("optimizer"):
            totals = self._update(local)
        return totals

    def _update(self, local: dict[str, float]) -> dict[str, float]:
        """Gradients summed over processes, divided by the step's sample size, clipped, applied; the step's totals."""
        config = self.config
        totals = merge_states(gather_objects(local, self.world))
        params = self.run.trainable
        if not self.sharded:  # FSDP has already reduce-scattered them, averaged over processes
            all_reduce_gradients(params, self.world)
        if self.run.scaler:
            self.run.scaler.unscale_(self.run.optimizer)
        scale = (self.world.size if self.sharded else 1.0) / max(totals["sample_size"], 1.0)
        max_norm = config.max_grad_norm if config.max_grad_norm > 0 else float("inf")
        if self.run.scaler:
            norm = scale_and_clip_(params, scale, max_norm)
            self.run.scaler.step(self.run.optimizer)
            totals["loss_scale"] = float(self.run.scaler.get_scale())
            self.run.scaler.update()
        else:
            norm = scaled_step(self.run.optimizer, params, scale, max_norm)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        self.run.scheduler.step()
        totals["grad_norm"] = grad_norm
        return totals

    # -- checkpoints ---------------------------------------------------------------------------------

    def _save(self, metrics: dict | None) -> Path:
        """Write `checkpoint-<step>` for the current state; `metrics`: this step's evaluation, if any."""
        path = self.output_dir / f"checkpoint-{self.run.state.step}"
        for cache in self.run.encoder_caches:
            if cache is not None:
                cache.commit()
        weights, optimizer_state = None, None
        if self.sharded:
            weights = sharding.full_model_state(self.model)
            optimizer_state = sharding.full_optimizer_state(self.model, self.run.optimizer)
        if self.world.is_main:
            files = {
                "optimizer.pt": optimizer_state or self.run.optimizer.state_dict(),
                "scheduler.pt": self.run.scheduler.state_dict(),
                "rng_state_0.pt": ckpt.rng_state(),
            }
            if self.run.scaler:
                files["scaler.pt"] = self.run.scaler.state_dict()
            if self._is_best(metrics):
                self.run.state.best_checkpoint, self.run.state.best_metric = (
                    str(path),
                    metrics[self._best_name(metrics)],
                )
            ckpt.write_checkpoint(
                self.output_dir,
                self.run.state.step,
                self.model,
                self.processor,
                files,
                self.run.state.to_json(self.world.size, metrics),
                weights,
                self.peft,
            )
            keep = Path(self.run.state.best_checkpoint) if self.run.state.best_checkpoint else None
            ckpt.rotate(self.output_dir, self.config.save_total_limit, keep)
        barrier(self.world)
        if not self.world.is_main:
            ckpt.write_rank_file(path, f"rng_state_{self.world.rank}.pt", ckpt.rng_state())
        barrier(self.world)
        return path

    def _best_name(self, metrics: dict) -> str | None:
        """`metric_for_best_model` (`weighted` when it weighs several scores), else the first score of the first
        metric."""
        chosen = self.config.metric_for_best_model
        if isinstance(chosen, dict):
            return "weighted"
        return chosen or next((key for key in metrics if key != "dropped"), None)

    def _is_best(self, metrics: dict | None) -> bool:
        name = self._best_name(metrics or {})
        if not metrics or name not in metrics:
            return False
        if self.run.state.best_metric is None:
            return True
        greater = self.config.greater_is_better
        greater = self.evaluator.score_directions.get(name, True) if greater is None else greater
        return metrics[name] > self.run.state.best_metric if greater else metrics[name] < self.run.state.best_metric

    def _resume(self, path: Path) -> TrainState:
        """Load weights, optimizer, scheduler, scaler and this process's RNG from `path`; return its state."""
        data = ckpt.read_state(path)
        if data["world_size"] != self.world.size:
            raise OFAError(
                f"training.resume_from_checkpoint: {path} was written by {data['world_size']} processes, "
                f"this run has {self.world.size}; resume with the same number of processes"
            )
        state = TrainState.from_json(data)
        labels = [task.label for task in self.tasks]
        if sorted(state.positions) != sorted(labels):
            raise OFAError(
                f"training.resume_from_checkpoint: {path} was written for the tasks "
                f"{sorted(state.positions) or ['(one task)']}, this run has {sorted(labels)}; resume with the same "
                f"tasks "
                f"or start a new output_dir"
            )
        if (path / DELTA_CONFIG).is_file() != (self.peft is not None):
            raise OFAError(
                f"training.resume_from_checkpoint: {path} was written by a run "
                f"{'with' if self.peft is None else 'without'} a peft section, this recipe has "
                f"{'none' if self.peft is None else 'one'}; resume with the recipe that wrote it or start a new "
                f"output_dir"
            )
        if self.peft is not None:
            self.peft.load(self.model, path, str(self.device))
            self.run.optimizer.load_state_dict(ckpt.load_file(path, "optimizer.pt"))
        elif self.sharded:
            weights = load_file(path / "model.safetensors", device=str(self.device))
            sharding.load_full_state(self.model, self.run.optimizer, weights, ckpt.load_file(path, "optimizer.pt"))
        else:
            weights = load_file(path / "model.safetensors", device=str(self.device))
            missing, unexpected = self.model.load_state_dict(weights, strict=False)
            tied = {"lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
            if set(missing) - tied or unexpected:
                raise OFAError(
                    f"{path}: model weights do not match this model (missing {sorted(set(missing) - tied)[:3]}, "
                    f"unexpected {unexpected[:3]})"
                )
            self.run.optimizer.load_state_dict(ckpt.load_file(path, "optimizer.pt"))
        self.run.scheduler.load_state_dict(ckpt.load_file(path, "scheduler.pt"))
        if self.run.scaler and (path / "scaler.pt").exists():
            self.run.scaler.load_state_dict(ckpt.load_file(path, "scaler.pt"))
        ckpt.set_rng_state(ckpt.load_file(path, f"rng_state_{self.world.rank}.pt"))
        return state

    # -- training ------------------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Train to `max_steps` / `num_train_epochs`, evaluating and saving as configured; returns a summary."""
        self._prepare()
        started = time.monotonic()
        while self.run.state.step < self.run.total_steps:
            self._train_step(task_for_step(self.run.state.step, self.run.probabilities, self.config.seed))
        if (
            self.config.save_strategy != "no"
            and self.run.saved_at != self.run.state.step
            and self.run.state.step > self.run.start_step
        ):
            with self.run.times.phase("checkpoints"):
                self._save(None)
        self.run.reporter.close()
        for cache in self.run.encoder_caches:
            if cache is not None:
                cache.commit()
                _say(self.world, f"encoder cache: {cache.hits:,} encoder rows read, {cache.misses:,} computed")
        result = self._summary(time.monotonic() - started)
        _say(self.world, "time by phase: " + breakdown_line(result["seconds_by_phase"]))
        _say(
            self.world,
            "done: " + ", ".join(f"{k}={v}" for k, v in result.items() if v is not None and k != "seconds_by_phase"),
        )
        return result

    def _prepare(self) -> None:
        """Everything a run sets up before its first step: seeds, freezing, data, optimizer, resumed state, reporter."""
        config, world = self.config, self.world
        self._check_trainable_setup()
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self._freeze_and_shard()
        self._build_datasets()
        steps_per_epoch = self._steps_per_epoch()
        total = sum(steps_per_epoch)
        self.run.total_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.num_train_epochs * total)
        self.run.probabilities = [task.probability for task in self.tasks]
        self.run.optimizer = build_optimizer(self.model, config)
        self.run.scheduler = build_scheduler(self.run.optimizer, config, self.run.total_steps)
        self.run.scaler = torch.amp.GradScaler("cuda") if config.mixed_precision == "fp16" else None
        self._remove_unfinished_checkpoints()
        resume = ckpt.resolve_resume(config.resume_from_checkpoint, self.output_dir)
        self.run.state = (
            self._resume(resume) if resume is not None else TrainState.start([task.label for task in self.tasks])
        )
        if resume is not None:
            _say(world, f"resumed from {resume} at step {self.run.state.step}")
        self._say_plan(steps_per_epoch)
        self.run.reporter = Reporter(
            self.output_dir, config.report_to, self.run.total_steps, self.run.state.step, world.is_main
        )
        self.run.start_step, self.run.saved_at, self.run.last_metrics = self.run.state.step, -1, {}
        self.run.times = PhaseTimes(self.device)

    def _check_trainable_setup(self) -> None:
        """Refuse what cannot train before touching the model: epoch cadence in a mixture, an empty train split."""
        config = self.config
        if len(self.tasks) > 1 and "epoch" in (config.eval_strategy, config.save_strategy):
            raise OFAError(
                "training.eval_strategy / save_strategy: 'epoch' has no single meaning when several tasks "
                "share the steps; use 'steps' with eval_steps / save_steps"
            )
        for task in self.tasks:
            if not task.train_examples:
                where = f" of task '{task.label}'" if task.label else ""
                raise OFAError(f"training: the train split{where} has no examples; check its data.reader and files")

    def _freeze_and_shard(self) -> None:
        """Freeze what the recipe (or the PEFT plan) keeps fixed, shard with FSDP, and list what trains."""
        config = self.config
        self.run.freezing = apply_freezing(
            self.model, config, self.peft.trains if self.peft else None, self.peft.method if self.peft else None
        )
        _say(self.world, str(self.run.freezing))
        if self.sharded:
            sharding.shard(self.model, reshard_after_forward=config.fsdp != "shard_grad_op")
        self.run.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self._train_mode()

    def _build_datasets(self) -> None:
        """Each task's image groups, encoder cache and dataset; the epoch's batches are drawn later."""
        config = self.config
        by_image = config.freeze_encoder and config.group_by_image
        self.run.groups = [group_examples(task.train_examples, by_image) for task in self.tasks]
        self.run.encoder_caches = self._open_encoder_caches()
        self.run.datasets = [
            GroupDataset(
                task.train_examples,
                groups,
                self.processor.image_processor,
                config.bad_images,
                config.cache_images,
                cache.encoded if cache is not None else None,
            )
            for task, groups, cache in zip(self.tasks, self.run.groups, self.run.encoder_caches)
        ]
        self.run.epoch_cache, self.run.streams = {}, [None] * len(self.tasks)

    def _steps_per_epoch(self) -> list[int]:
        """Optimizer steps in one epoch of each task; a task too small to make one batch is an error."""
        steps_per_epoch = [
            math.ceil(len(self._epoch_batches(index, 0)) / self.config.gradient_accumulation_steps)
            for index in range(len(self.tasks))
        ]
        for task, steps in zip(self.tasks, steps_per_epoch):
            if steps == 0:
                where = f"task '{task.label}': " if task.label else ""
                raise OFAError(
                    f"training: {where}{len(task.train_examples)} examples make no batch for {self.world.size} "
                    "processes"
                )
        return steps_per_epoch

    def _say_plan(self, steps_per_epoch: list[int]) -> None:
        """One line per task: examples, groups, steps per epoch and what a step trains; then the total steps."""
        config, mixture = self.config, len(self.tasks) > 1
        for index, (task, groups, steps) in enumerate(zip(self.tasks, self.run.groups, steps_per_epoch)):
            share = f" ({task.label}, {task.probability:.0%} of steps)" if mixture else ""
            batches = self._epoch_batches(index, 0)
            images = sum(map(len, batches)) / len(batches) * config.gradient_accumulation_steps
            _say(
                self.world,
                f"{len(task.train_examples)} examples in {len(groups)} groups; {steps} steps/epoch{share}; a step "
                f"trains {config.per_device_train_batch_size * config.gradient_accumulation_steps} examples of "
                f"{images:.1f} images (encoder inputs) on average per process",
            )
        _say(self.world, f"{self.run.total_steps} steps")

    def _remove_unfinished_checkpoints(self) -> None:
        """`.tmp-checkpoint-*` directories a killed run left behind."""
        if self.world.is_main:
            for leftover in self.output_dir.glob(".tmp-checkpoint-*"):
                shutil.rmtree(leftover, ignore_errors=True)

    def _open_encoder_caches(self) -> list[EncoderCache | None]:
        """Each task's encoder cache when the encoder's outputs cannot change (`training.encoder_cache`), else None."""
        config, nothing = self.config, [None] * len(self.tasks)
        if not (config.freeze_encoder and config.encoder_cache):
            return nothing
        encoder = self.model.get_encoder()
        reason = None
        if self.sharded:
            reason = "under training.fsdp the encoder runs inside the model's forward"
        elif any(p.requires_grad for p in encoder.parameters()):
            reason = "the shared word embedding, the encoder's input, trains (set training.freeze_word_embed to true)"
        elif getattr(self.processor.image_processor, "randomized", False):
            reason = "the image processor augments images at random, so every epoch needs the encoder"
        if reason:
            _say(self.world, f"encoder cache off: {reason}")
            return nothing
        return [
            open_cache(
                task.train_examples,
                self._encoder_pass,
                encoder,
                self.model.config,
                self.processor.image_processor,
                config.mixed_precision,
                config.encoder_cache_dtype,
                config.encoder_cache_memory_mb,
                self.output_dir / "encoder-cache" / (task.label or "train"),
                self.world.rank,
                functools.partial(_say, self.world),
            )
            for task in self.tasks
        ]

    def _epoch_batches(self, index: int, epoch: int) -> list[list[Part]]:
        """This process's micro-batches (parts of groups, `per_device_train_batch_size` examples) of task `index` in
        `epoch`."""
        cached = self.run.epoch_cache.get(index)
        if cached is None or cached[0] != epoch:
            config, world = self.config, self.world
            cached = (
                epoch,
                example_batches(
                    self.run.groups[index],
                    config.per_device_train_batch_size,
                    world.size,
                    world.rank,
                    config.seed,
                    epoch,
                ),
            )
            self.run.epoch_cache[index] = cached
        return cached[1]

    def _next_micro_batches(self, index: int) -> list[dict]:
        """The next `gradient_accumulation_steps` micro-batches of task `index` (fewer where its epoch ends);
        a task whose epoch is used up starts its next one."""
        position = self.run.state.positions[self.tasks[index].label]
        if self.run.streams[index] is None:
            batches = self._epoch_batches(index, position.epoch)
            loader = torch.utils.data.DataLoader(
                self.run.datasets[index],
                batch_sampler=batches[position.batch_position :],
                collate_fn=self.collator,
                num_workers=self.config.dataloader_num_workers,
                generator=loader_generator(),
            )
            self.run.streams[index] = iter(loader)
        micro = list(islice(self.run.streams[index], self.config.gradient_accumulation_steps))
        if micro:
            return micro
        position.next_epoch()
        self.run.streams[index] = None
        return self._next_micro_batches(index)

    def _train_step(self, index: int) -> None:
        """One optimizer step on task `index`, then whatever is due after it: a log line, an evaluation, a
        checkpoint."""
        config, state, task = self.config, self.run.state, self.tasks[index]
        position = state.positions[task.label]
        with self.run.times.phase("data"):
            micro = self._next_micro_batches(index)
        position.batch_position += len(micro)
        totals = self._step(micro, index)
        state.step += 1
        self.run.reporter.step_done(totals, task.label)
        end_of_epoch = position.batch_position >= len(self._epoch_batches(index, position.epoch))
        if due("steps", config.logging_steps, state.step, end_of_epoch, last_step=state.step == self.run.total_steps):
            self.run.reporter.log_window(state.step, self.run.scheduler.get_last_lr()[0], self._epochs())
        else:
            self.run.reporter.heartbeat(state.step, self.run.scheduler.get_last_lr()[0])
        metrics = None
        if any(task.eval_examples for task in self.tasks) and due(
            config.eval_strategy, config.eval_interval, state.step, end_of_epoch
        ):
            with self.run.times.phase("evaluation"):
                metrics = self.run.last_metrics = self._evaluate_during_training()
        if due(config.save_strategy, config.save_steps, state.step, end_of_epoch):
            with self.run.times.phase("checkpoints"):
                self._save(metrics)
            self.run.saved_at = state.step
        if end_of_epoch:
            position.next_epoch()
            self.run.streams[index] = None

    def _epochs(self) -> dict[str, float]:
        """Each task's progress in epochs (whole epochs plus the consumed part of the current one)."""
        epochs = {}
        for index, task in enumerate(self.tasks):
            position = self.run.state.positions[task.label]
            epochs[task.label] = position.epoch + position.batch_position / max(
                len(self._epoch_batches(index, position.epoch)), 1
            )
        return epochs

    def _evaluate_during_training(self) -> dict[str, float]:
        metrics, samples = self.evaluate(return_samples=self.config.num_sample_predictions)
        self.run.reporter.evaluation(self.run.state.step, metrics, samples, self.evaluation_precision())
        self._train_mode()
        return metrics

    def _summary(self, seconds: float) -> dict[str, Any]:
        state = self.run.state
        epochs = self._epochs()
        return {
            "steps": state.step,
            "epochs": epochs[""] if list(epochs) == [""] else epochs,
            "train_seconds": round(seconds, 3),
            "seconds_by_phase": self.run.times.summary(seconds),
            "trainable_parameters": self.run.freezing.trainable,
            "peft": self.peft.method if self.peft else None,
            "frozen_parameters": self.run.freezing.frozen,
            "best_checkpoint": state.best_checkpoint,
            "best_metric": state.best_metric,
            "eval": self.run.last_metrics,
        }

    # -- evaluation ----------------------------------------------------------------------------------

    def evaluation_precision(self) -> str:
        """What evaluation computes in (see `Evaluator.precision`)."""
        return self.evaluator.precision(self.model)

    def evaluate(
        self, examples: Sequence[Example] | None = None, return_samples: int = 0, predictions: list | None = None
    ) -> tuple[dict[str, float], list[str]]:
        """Score the model on every task's evaluation examples (see `Evaluator.evaluate`)."""
        return self.evaluator.evaluate(self._generation_model(), examples, return_samples, predictions)
