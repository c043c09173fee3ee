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

import orjson
import torch
from safetensors.torch import load_file

from ofa_core.data import Collator, Example, GroupDataset, epoch_batches, group_examples
from ofa_core.data.grouping import Part, example_batches
from ofa_core.model.errors import OFAError
from ofa_core.inference.loading import DELTA_CONFIG
from ofa_core.generation.closed_set import AllowedTokens, ClosedSetDecoder, decode_batch
from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.model.precision import DTYPE_NAMES
from ofa_core.plugin.specs import ClosedSet, LossContext, LossOutput, Metric
from ofa_core.trainer import checkpointing as ckpt
from ofa_core.trainer import sharding
from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer.encoder_cache import EncoderCache, open_cache
from ofa_core.trainer.distributed import (World, all_reduce_gradients, barrier, device_for, gather_objects, init_world)
from ofa_core.trainer.freezing import apply_freezing
from ofa_core.trainer.losses import label_smoothed_cross_entropy
from ofa_core.trainer.optim import build_optimizer, build_scheduler
from ofa_core.trainer.reporting import Reporter
from ofa_core.trainer.schedule import due
from ofa_core.trainer.state import TrainState
from ofa_core.trainer.tasks import LossFn, TaskParts, task_for_step
from ofa_core.trainer.timing import PhaseTimes, breakdown_line

def _say(world: World, text: str) -> None:
    if world.is_main:
        print(f"ofa: {text}", file=sys.stderr)


def _loader_generator() -> torch.Generator:
    """A DataLoader draws a seed when iterated; from its own generator, so the model's RNG stream
    (dropout) does not depend on where epochs start, which resume equality needs."""
    return torch.Generator().manual_seed(0)


def _default_loss(output: Any, batch: dict, epsilon: float) -> LossOutput:
    """`Trainer`'s own loss when a task gives none: label-smoothed cross entropy with `training.label_smoothing`."""
    return label_smoothed_cross_entropy(output.logits, batch["labels"], epsilon, batch.get("constraint_mask"),
                                        batch.get("loss_weights"))


def _no_metric_registry(name: str, options: Mapping[str, Any]) -> Metric:
    raise OFAError(f"loss.reward: this trainer was given no metric registry to build '{name}' from; "
                   f"set TaskParts.build_metric (runs from a recipe have it)")


def _shown(value: Any) -> str:
    """A prediction or reference as a sample line shows it: text as it is, a structured value (a box) as JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _references_per_input(examples: Sequence[Example]) -> list[list[str]]:
    """The references of each distinct (image, source text), merged over its examples (one caption per row or all)."""
    merged: dict[tuple, dict[str, None]] = {}
    for example in examples:
        merged.setdefault((example.image_key, example.source_ids), {}).update(dict.fromkeys(example.references))
    return [list(references) for references in merged.values()]


def _unchanged(text: str, record: dict) -> str:
    return text


def merge_states(states: Sequence[dict]) -> dict:
    """Sum-merge metric states: numbers add, lists concatenate."""
    merged = dict(states[0])
    for state in states[1:]:
        for key, value in state.items():
            merged[key] = merged[key] + value if key in merged else value
    return merged


class Trainer:
    """Trains and evaluates an OFA model on tokenized examples (see `ofa_core.data.encode_records`).

    One task's parts are given as keyword arguments (see `TaskParts` for their meaning), or several
    tasks as `tasks`: each step then trains on one task, drawn by the tasks' probabilities, and each
    evaluation scores every task with its own search and metrics (`<label>/<score>`).
    """

    def __init__(self, model: torch.nn.Module, config: TrainingConfig, processor: Any, *,
                 train_examples: Sequence[Example] = (), eval_examples: Sequence[Example] = (),
                 loss_fn: LossFn | None = None, metrics: dict[str, Callable[[], Metric]] | None = None,
                 higher_is_better: dict[str, bool] | None = None, generation_config: Any = None,
                 postprocess: Callable[[str, dict], Any] | None = None, closed_set: ClosedSet | None = None,
                 tasks: Sequence[TaskParts] = (), world: World | None = None, peft: Any = None) -> None:
        self.world = world or init_world()
        self.peft = peft  # a trainer.peft.PeftPlan: only its parameters train, checkpoints are deltas
        self.device = device_for(self.world)
        if config.mixed_precision == "fp16" and self.device.type != "cuda":
            raise OFAError("training.mixed_precision: fp16 needs a CUDA GPU (its GradScaler is CUDA-only); use 'bf16' or 'no' on CPU")
        self.model = model.to(self.device)
        self.config = config
        self.processor = processor
        single = TaskParts(train_examples=train_examples, eval_examples=eval_examples, loss_fn=loss_fn,
                           metrics=metrics or {}, higher_is_better=higher_is_better or {},
                           generation_config=generation_config, postprocess=postprocess, closed_set=closed_set)
        if tasks and single != TaskParts():
            raise ValueError("give the parts of one task as keyword arguments, or `tasks`, not both")
        self.tasks: list[TaskParts] = list(tasks) or [single]
        if len({task.label for task in self.tasks}) != len(self.tasks) or (len(self.tasks) > 1 and not all(
                task.label for task in self.tasks)):
            raise ValueError("the tasks of a mixture need distinct, non-empty labels")
        for task in self.tasks:
            task.loss_fn = task.loss_fn or functools.partial(_default_loss, epsilon=config.label_smoothing)
            task.postprocess = task.postprocess or _unchanged
        self.decoders = [ClosedSetDecoder(task.closed_set, processor.tokenizer) if task.closed_set else None
                         for task in self.tasks]
        self.allowed = [AllowedTokens(task.allowed_tokens, processor.tokenizer.eos_token_id)
                        if task.allowed_tokens is not None else None for task in self.tasks]
        self.score_directions: dict[str, bool] = {}  # score key (e.g. 'cider') -> its metric's direction
        self.output_dir = Path(config.output_dir)
        self.collator = Collator(model.config.pad_token_id, processor.image_processor.patch_image_size)
        self.frozen_encoder = config.freeze_encoder
        self.sharded = bool(config.fsdp) and self.world.distributed
        self.model_class = type(model)
        self._loss_contexts: dict[int, LossContext] = {}
        self.encoder_caches: list[EncoderCache | None] = [None] * len(self.tasks)
        self.encoder_cache: EncoderCache | None = None  # the stepping task's

    # -- forward -------------------------------------------------------------------------------------

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.mixed_precision)
        return torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    def _encode(self, batch: dict) -> OFAEncoderOutput:
        """One encoder pass per group, rows expanded to the decoder rows.

        No graph when nothing in the encoder trains. The shared word embedding is also the
        encoder's input embedding: while it trains, its gradient through the (frozen) encoder
        flows back through the shared pass, summed over the group, as per-caption passes would.
        """
        if self.encoder_cache is not None:
            out = self.encoder_cache.encode(batch, self._encoder_pass)
        else:
            encoder = self.model.get_encoder()
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")}
            needs_grad = any(p.requires_grad for p in encoder.parameters())
            with contextlib.nullcontext() if needs_grad else torch.no_grad():
                out = encoder(**inputs)
        index = batch["encoder_index"]
        if index.numel() == out.last_hidden_state.shape[0]:
            return out
        return OFAEncoderOutput(last_hidden_state=out.last_hidden_state.index_select(0, index),
                                padding_mask=out.padding_mask.index_select(0, index),
                                position_embeddings=out.position_embeddings.index_select(0, index))

    @torch.no_grad()
    def _encoder_pass(self, inputs: dict[str, torch.Tensor]) -> OFAEncoderOutput:
        """The frozen encoder on `inputs` (moved to the device), under the run's autocast: the encoder cache's pass."""
        with self._autocast():
            return self.model.get_encoder()(**self._to_device(inputs))

    def _forward(self, batch: dict):
        if not self.sharded:
            return self.model(decoder_input_ids=batch["decoder_input_ids"], encoder_outputs=self._encode(batch), use_cache=False)
        # Sharded parameters are gathered only inside the root forward: no shared encoder pass here.
        index = batch["encoder_index"]
        inputs = {k: batch[k].index_select(0, index) for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")}
        return self.model(**inputs, decoder_input_ids=batch["decoder_input_ids"], use_cache=False)

    def _loss_context(self, index: int) -> LossContext:
        """What a loss with `drives_model` gets besides model and batch; built once per task."""
        if self.sharded:
            raise OFAError("loss: a loss that runs the model itself (e.g. scst) cannot run under training.fsdp; "
                           "set training.fsdp to false")
        if index not in self._loss_contexts:
            examples = self.tasks[index].train_examples
            self._loss_contexts[index] = LossContext(
                tokenizer=self.processor.tokenizer, encode=self._encode, train_mode=self._train_mode,
                metric=self.tasks[index].build_metric or _no_metric_registry,
                train_references=functools.partial(_references_per_input, examples))
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
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _train_mode(self) -> None:
        self.model.train()
        if self.frozen_encoder:
            self.model.get_encoder().eval()  # locked tower: no dropout, no BatchNorm statistic updates

    # -- one optimizer step --------------------------------------------------------------------------

    def _step(self, micro_batches: list[dict], index: int) -> dict[str, float]:
        """One optimizer step on micro-batches of task `index`; returns the step's totals over all processes."""
        task, decoder = self.tasks[index], self.decoders[index]
        self.encoder_cache = self.encoder_caches[index]
        self.optimizer.zero_grad(set_to_none=True)
        local = {"sample_size": 0.0, "loss_sum": 0.0, "num_dropped": 0.0, "nsamples": 0.0}
        for batch in micro_batches:
            local["num_dropped"] += batch["num_dropped"]
            if "input_ids" not in batch:
                continue
            with self.times.phase("forward"):
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
            with self.times.phase("backward"):
                (self.scaler.scale(loss.loss_sum) if self.scaler else loss.loss_sum).backward()
            local["sample_size"] += loss.sample_size
            local["loss_sum"] += float(loss.loss_sum.detach())
            local["nsamples"] += len(batch["examples"])
            for key, value in loss.logs.items():
                if key != "loss":
                    local[key] = local.get(key, 0.0) + value
        with self.times.phase("optimizer"):
            totals = self._update(local)
        return totals

    def _update(self, local: dict[str, float]) -> dict[str, float]:
        """Gradients summed over processes, divided by the step's sample size, clipped, applied; the step's totals."""
        config = self.config
        totals = merge_states(gather_objects(local, self.world))
        params = self.trainable
        if not self.sharded:  # FSDP has already reduce-scattered them, averaged over processes
            all_reduce_gradients(params, self.world)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        scale = (self.world.size if self.sharded else 1.0) / max(totals["sample_size"], 1.0)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale)
        max_norm = config.max_grad_norm if config.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            totals["loss_scale"] = float(self.scaler.get_scale())
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        totals["grad_norm"] = grad_norm
        return totals

    # -- checkpoints ---------------------------------------------------------------------------------

    def _save(self, metrics: dict | None) -> Path:
        """Write `checkpoint-<step>` for the current state; `metrics`: this step's evaluation, if any."""
        path = self.output_dir / f"checkpoint-{self.state.step}"
        for cache in self.encoder_caches:
            if cache is not None:
                cache.commit()
        weights, optimizer_state = None, None
        if self.sharded:
            weights = sharding.full_model_state(self.model)
            optimizer_state = sharding.full_optimizer_state(self.model, self.optimizer)
        if self.world.is_main:
            files = {"optimizer.pt": optimizer_state or self.optimizer.state_dict(), "scheduler.pt": self.scheduler.state_dict(),
                     "rng_state_0.pt": ckpt.rng_state()}
            if self.scaler:
                files["scaler.pt"] = self.scaler.state_dict()
            if self._is_best(metrics):
                self.state.best_checkpoint, self.state.best_metric = str(path), metrics[self._best_name(metrics)]
            ckpt.write_checkpoint(self.output_dir, self.state.step, self.model, self.processor, files,
                                  self.state.to_json(self.world.size, metrics), weights, self.peft)
            keep = Path(self.state.best_checkpoint) if self.state.best_checkpoint else None
            ckpt.rotate(self.output_dir, self.config.save_total_limit, keep)
        barrier(self.world)
        if not self.world.is_main:
            ckpt.write_rank_file(path, f"rng_state_{self.world.rank}.pt", ckpt.rng_state())
        barrier(self.world)
        return path

    def _best_name(self, metrics: dict) -> str | None:
        """`metric_for_best_model` (`weighted` when it weighs several scores), else the first score of the first metric."""
        chosen = self.config.metric_for_best_model
        if isinstance(chosen, dict):
            return "weighted"
        return chosen or next((key for key in metrics if key != "dropped"), None)

    def _is_best(self, metrics: dict | None) -> bool:
        name = self._best_name(metrics or {})
        if not metrics or name not in metrics:
            return False
        if self.state.best_metric is None:
            return True
        greater = self.config.greater_is_better
        greater = self.score_directions.get(name, True) if greater is None else greater
        return metrics[name] > self.state.best_metric if greater else metrics[name] < self.state.best_metric

    def _resume(self, path: Path) -> TrainState:
        """Load weights, optimizer, scheduler, scaler and this process's RNG from `path`; return its state."""
        data = ckpt.read_state(path)
        if data["world_size"] != self.world.size:
            raise OFAError(f"training.resume_from_checkpoint: {path} was written by {data['world_size']} processes, "
                           f"this run has {self.world.size}; resume with the same number of processes")
        state = TrainState.from_json(data)
        labels = [task.label for task in self.tasks]
        if sorted(state.positions) != sorted(labels):
            raise OFAError(f"training.resume_from_checkpoint: {path} was written for the tasks "
                           f"{sorted(state.positions) or ['(one task)']}, this run has {sorted(labels)}; resume with the same tasks "
                           f"or start a new output_dir")
        if (path / DELTA_CONFIG).is_file() != (self.peft is not None):
            raise OFAError(f"training.resume_from_checkpoint: {path} was written by a run "
                           f"{'with' if self.peft is None else 'without'} a peft section, this recipe has "
                           f"{'none' if self.peft is None else 'one'}; resume with the recipe that wrote it or start a new output_dir")
        if self.peft is not None:
            self.peft.load(self.model, path, str(self.device))
            self.optimizer.load_state_dict(ckpt.load_file(path, "optimizer.pt"))
        elif self.sharded:
            weights = load_file(path / "model.safetensors", device=str(self.device))
            sharding.load_full_state(self.model, self.optimizer, weights, ckpt.load_file(path, "optimizer.pt"))
        else:
            weights = load_file(path / "model.safetensors", device=str(self.device))
            missing, unexpected = self.model.load_state_dict(weights, strict=False)
            tied = {"lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
            if set(missing) - tied or unexpected:
                raise OFAError(f"{path}: model weights do not match this model (missing {sorted(set(missing) - tied)[:3]}, unexpected {unexpected[:3]})")
            self.optimizer.load_state_dict(ckpt.load_file(path, "optimizer.pt"))
        self.scheduler.load_state_dict(ckpt.load_file(path, "scheduler.pt"))
        if self.scaler and (path / "scaler.pt").exists():
            self.scaler.load_state_dict(ckpt.load_file(path, "scaler.pt"))
        ckpt.set_rng_state(ckpt.load_file(path, f"rng_state_{self.world.rank}.pt"))
        return state

    # -- training ------------------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Train to `max_steps` / `num_train_epochs`, evaluating and saving as configured; returns a summary."""
        self._prepare()
        started = time.monotonic()
        while self.state.step < self.total_steps:
            self._train_step(task_for_step(self.state.step, self.probabilities, self.config.seed))
        if self.config.save_strategy != "no" and self.saved_at != self.state.step and self.state.step > self.start_step:
            with self.times.phase("checkpoints"):
                self._save(None)
        self.reporter.close()
        for cache in self.encoder_caches:
            if cache is not None:
                cache.commit()
                _say(self.world, f"encoder cache: {cache.hits:,} encoder rows read, {cache.misses:,} computed")
        result = self._summary(time.monotonic() - started)
        _say(self.world, "time by phase: " + breakdown_line(result["seconds_by_phase"]))
        _say(self.world, "done: " + ", ".join(f"{k}={v}" for k, v in result.items() if v is not None and k != "seconds_by_phase"))
        return result

    def _prepare(self) -> None:
        """Everything a run sets up before its first step: seeds, freezing, data, optimizer, resumed state, reporter."""
        config, world = self.config, self.world
        mixture = len(self.tasks) > 1
        if mixture and "epoch" in (config.eval_strategy, config.save_strategy):
            raise OFAError("training.eval_strategy / save_strategy: 'epoch' has no single meaning when several tasks "
                           "share the steps; use 'steps' with eval_steps / save_steps")
        for task in self.tasks:
            if not task.train_examples:
                where = f" of task '{task.label}'" if task.label else ""
                raise OFAError(f"training: the train split{where} has no examples; check its data.reader and files")
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.freezing = apply_freezing(self.model, config, self.peft.trains if self.peft else None,
                                       self.peft.method if self.peft else None)
        _say(world, str(self.freezing))
        if self.sharded:
            sharding.shard(self.model, reshard_after_forward=config.fsdp != "shard_grad_op")
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self._train_mode()
        by_image = config.freeze_encoder and config.group_by_image
        self.groups = [group_examples(task.train_examples, by_image) for task in self.tasks]
        self.encoder_caches = self._open_encoder_caches()
        self.datasets = [GroupDataset(task.train_examples, groups, self.processor.image_processor, config.bad_images,
                                      config.cache_images, cache.encoded if cache is not None else None)
                         for task, groups, cache in zip(self.tasks, self.groups, self.encoder_caches)]
        self._epoch_cache: dict[int, tuple[int, list[list[Part]]]] = {}
        self._streams: list[Any] = [None] * len(self.tasks)
        steps_per_epoch = [math.ceil(len(self._epoch_batches(index, 0)) / config.gradient_accumulation_steps)
                           for index in range(len(self.tasks))]
        for task, steps in zip(self.tasks, steps_per_epoch):
            if steps == 0:
                where = f"task '{task.label}': " if task.label else ""
                raise OFAError(f"training: {where}{len(task.train_examples)} examples make no batch for {world.size} processes")
        total = sum(steps_per_epoch)
        self.total_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.num_train_epochs * total)
        self.probabilities = [task.probability for task in self.tasks]
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if config.mixed_precision == "fp16" else None
        self._remove_unfinished_checkpoints()
        resume = ckpt.resolve_resume(config.resume_from_checkpoint, self.output_dir)
        self.state = self._resume(resume) if resume is not None else TrainState.start([task.label for task in self.tasks])
        if resume is not None:
            _say(world, f"resumed from {resume} at step {self.state.step}")
        for index, (task, groups, steps) in enumerate(zip(self.tasks, self.groups, steps_per_epoch)):
            share = f" ({task.label}, {task.probability:.0%} of steps)" if mixture else ""
            batches = self._epoch_batches(index, 0)
            images = sum(map(len, batches)) / len(batches) * config.gradient_accumulation_steps
            _say(world, f"{len(task.train_examples)} examples in {len(groups)} groups; {steps} steps/epoch{share}; a step "
                        f"trains {config.per_device_train_batch_size * config.gradient_accumulation_steps} examples of "
                        f"{images:.1f} images (encoder inputs) on average per process")
        _say(world, f"{self.total_steps} steps")
        self.reporter = Reporter(self.output_dir, config.report_to, self.total_steps, self.state.step, world.is_main)
        self.start_step, self.saved_at, self.last_metrics = self.state.step, -1, {}
        self.times = PhaseTimes(self.device)

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
        return [open_cache(task.train_examples, self._encoder_pass, encoder, self.model.config, self.processor.image_processor,
                           config.mixed_precision, config.encoder_cache_dtype, config.encoder_cache_memory_mb,
                           self.output_dir / "encoder-cache" / (task.label or "train"), self.world.rank,
                           functools.partial(_say, self.world))
                for task in self.tasks]

    def _epoch_batches(self, index: int, epoch: int) -> list[list[Part]]:
        """This process's micro-batches (parts of groups, `per_device_train_batch_size` examples) of task `index` in `epoch`."""
        cached = self._epoch_cache.get(index)
        if cached is None or cached[0] != epoch:
            config, world = self.config, self.world
            cached = epoch, example_batches(self.groups[index], config.per_device_train_batch_size, world.size, world.rank,
                                            config.seed, epoch)
            self._epoch_cache[index] = cached
        return cached[1]

    def _next_micro_batches(self, index: int) -> list[dict]:
        """The next `gradient_accumulation_steps` micro-batches of task `index` (fewer where its epoch ends);
        a task whose epoch is used up starts its next one."""
        position = self.state.positions[self.tasks[index].label]
        if self._streams[index] is None:
            batches = self._epoch_batches(index, position.epoch)
            loader = torch.utils.data.DataLoader(self.datasets[index], batch_sampler=batches[position.batch_position:],
                                                 collate_fn=self.collator, num_workers=self.config.dataloader_num_workers,
                                                 generator=_loader_generator())
            self._streams[index] = iter(loader)
        micro = list(islice(self._streams[index], self.config.gradient_accumulation_steps))
        if micro:
            return micro
        position.next_epoch()
        self._streams[index] = None
        return self._next_micro_batches(index)

    def _train_step(self, index: int) -> None:
        """One optimizer step on task `index`, then whatever is due after it: a log line, an evaluation, a checkpoint."""
        config, state, task = self.config, self.state, self.tasks[index]
        position = state.positions[task.label]
        with self.times.phase("data"):
            micro = self._next_micro_batches(index)
        position.batch_position += len(micro)
        totals = self._step(micro, index)
        state.step += 1
        self.reporter.step_done(totals, task.label)
        end_of_epoch = position.batch_position >= len(self._epoch_batches(index, position.epoch))
        if due("steps", config.logging_steps, state.step, end_of_epoch, last_step=state.step == self.total_steps):
            self.reporter.log_window(state.step, self.scheduler.get_last_lr()[0], self._epochs())
        else:
            self.reporter.heartbeat(state.step, self.scheduler.get_last_lr()[0])
        metrics = None
        if any(task.eval_examples for task in self.tasks) and due(config.eval_strategy, config.eval_interval, state.step, end_of_epoch):
            with self.times.phase("evaluation"):
                metrics = self.last_metrics = self._evaluate_during_training()
        if due(config.save_strategy, config.save_steps, state.step, end_of_epoch):
            with self.times.phase("checkpoints"):
                self._save(metrics)
            self.saved_at = state.step
        if end_of_epoch:
            position.next_epoch()
            self._streams[index] = None

    def _epochs(self) -> dict[str, float]:
        """Each task's progress in epochs (whole epochs plus the consumed part of the current one)."""
        epochs = {}
        for index, task in enumerate(self.tasks):
            position = self.state.positions[task.label]
            epochs[task.label] = position.epoch + position.batch_position / max(len(self._epoch_batches(index, position.epoch)), 1)
        return epochs

    def _evaluate_during_training(self) -> dict[str, float]:
        metrics, samples = self.evaluate(return_samples=self.config.num_sample_predictions)
        self.reporter.evaluation(self.state.step, metrics, samples, self.evaluation_precision())
        self._train_mode()
        return metrics

    def _summary(self, seconds: float) -> dict[str, Any]:
        state = self.state
        epochs = self._epochs()
        return {"steps": state.step, "epochs": epochs[""] if list(epochs) == [""] else epochs,
                "train_seconds": round(seconds, 3), "seconds_by_phase": self.times.summary(seconds),
                "trainable_parameters": self.freezing.trainable, "peft": self.peft.method if self.peft else None,
                "frozen_parameters": self.freezing.frozen, "best_checkpoint": state.best_checkpoint,
                "best_metric": state.best_metric, "eval": self.last_metrics}

    # -- evaluation ----------------------------------------------------------------------------------

    def evaluation_precision(self) -> str:
        """What evaluation computes in, as its records state it: the training precision's autocast
        ('bf16-autocast'), else the weights' own ('fp32', 'bf16', 'fp16')."""
        if self.config.mixed_precision != "no":
            return f"{self.config.mixed_precision}-autocast"
        dtype = next(self.model.parameters()).dtype
        return next((mode for mode, name in DTYPE_NAMES.items() if getattr(torch, name) == dtype), str(dtype))

    def _decode(self, model: torch.nn.Module, batch: dict, index: int, rank_all: bool = False) -> tuple[list[str], list | None]:
        """Stripped generated texts, plus each example's (answer, score) ranking when a closed set ranks: its top-k,
        or with `rank_all` every answer."""
        task = self.tasks[index]
        with self._autocast():
            decoded = decode_batch(model, batch, task.generation_config, self.processor.tokenizer, self.decoders[index],
                                   self.allowed[index], rank_all)
        rankings = [d.ranking for d in decoded] if decoded and decoded[0].ranking else None
        return [d.text for d in decoded], rankings

    @torch.no_grad()
    def evaluate(self, examples: Sequence[Example] | None = None, return_samples: int = 0,
                 predictions: list | None = None) -> tuple[dict[str, float], list[str]]:
        """Generate for every example of every task (split across processes), update each task's metrics, merge
        their states.

        Returns the scores (identical on every process; `<label>/<score>` in a mixture, plus `weighted` when
        `metric_for_best_model` weighs several scores) and up to `return_samples` lines of 'id: prediction |
        references' per task from rank 0. `examples` replaces a single task's evaluation examples. With
        `predictions`, this process's `{"id", "prediction", "references"}` rows are appended to it (plus, for a
        closed set, `ranking`: every answer with its summed log-probability, best first, and `task`, the task's
        label, in a mixture).
        """
        if examples is not None and len(self.tasks) > 1:
            raise ValueError("evaluate(examples=...) replaces the examples of a single task; a mixture evaluates each task's own")
        model = self._generation_model()
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
                raise OFAError(f"training.metric_for_best_model: no score named {', '.join(missing)} "
                               f"(scores: {', '.join(key for key in scores if key != 'dropped')})")
            scores["weighted"] = sum(weight * scores[name] for name, weight in weights.items())
        return scores, samples

    def _evaluate_task(self, model: torch.nn.Module, index: int, examples: Sequence[Example], return_samples: int,
                       predictions: list | None) -> tuple[dict[str, float], list[str]]:
        """One task's scores (unprefixed, with `dropped`) and sample lines."""
        task, world, config = self.tasks[index], self.world, self.config
        groups = group_examples(examples, by_image=False)
        dataset = GroupDataset(examples, groups, self.processor.image_processor, config.bad_images)
        batches = epoch_batches(groups, config.per_device_eval_batch_size, world.size, world.rank, 0, 0, shuffle=False, drop_last=False)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=self.collator,
                                             num_workers=config.dataloader_num_workers, generator=_loader_generator())
        metrics = {name: factory() for name, factory in task.metrics.items()}
        samples, dropped = [], 0
        for batch in loader:
            dropped += batch["num_dropped"]
            if "input_ids" not in batch:
                continue
            batch = self._to_device(batch)
            texts, rankings = self._decode(model, batch, index, rank_all=predictions is not None)
            found = [task.postprocess(text, example.record) for text, example in zip(texts, batch["examples"])]
            references = [list(example.references) for example in batch["examples"]]
            top_k = task.closed_set.top_k if task.closed_set is not None else 1
            for metric in metrics.values():
                metric.update(found, references)
                if rankings and top_k > 1 and hasattr(metric, "update_rankings"):
                    metric.update_rankings([[answer for answer, _ in ranking[:top_k]] for ranking in rankings], references)
            if predictions is not None:
                rows = [{"id": e.id, "prediction": p, "references": r} for e, p, r in zip(batch["examples"], found, references)]
                for row, ranking in zip(rows, rankings or ()):
                    row["ranking"] = [{"answer": answer, "score": score} for answer, score in ranking]
                if task.label:
                    rows = [{"task": task.label, **row} for row in rows]
                predictions.extend(rows)
            samples.extend(f"{e.id}: {_shown(p)} | {' / '.join(map(_shown, r[:2]))}"
                           for e, p, r in zip(batch["examples"], found, references))
        scores: dict[str, float] = {}
        prefix = f"{task.label}/" if task.label else ""
        for name, metric in metrics.items():
            metric.load_state(merge_states(gather_objects(metric.state(), world)))
            computed = metric.compute()
            scores.update(computed)
            self.score_directions.update(dict.fromkeys((f"{prefix}{key}" for key in computed), task.higher_is_better.get(name, True)))
        scores["dropped"] = float(sum(gather_objects(dropped, world)))
        return scores, samples[:return_samples]
