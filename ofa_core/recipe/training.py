"""`TrainingConfig`: the recipe's `training` block, in transformers `TrainingArguments` vocabulary.

Users arrive knowing the HF key names, so they are kept; validators reject impossible values
before any compute (a typo in `lr_scheduler_type` must not surface after the first epoch).
"""

from __future__ import annotations

import fnmatch
from typing import Literal

import attrs
from attrs import validators as v

WORD_EMBED = "model.shared.weight"
"""The shared token embedding's parameter name (tied to the encoder's, the decoder's and `lm_head`)."""

_non_negative = v.ge(0)
_positive = v.gt(0)


def _probability(_instance, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must lie in [0, 1), got {value}")


def _resume(_instance, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{attribute.name} must be 'auto', a checkpoint path or null, got {value!r}")


def _best_model_metric(_instance, attribute: attrs.Attribute, value: str | dict | None) -> None:
    if value is None or (isinstance(value, str) and value):
        return
    if (
        isinstance(value, dict)
        and value
        and all(
            isinstance(k, str) and isinstance(w, (int, float)) and not isinstance(w, bool) for k, w in value.items()
        )
    ):
        return
    raise ValueError(f"{attribute.name} must be a score name or an object of score names to weights, got {value!r}")


def _report_to(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """HF accepts a string, a list, 'none' or 'all'; store a tuple of backends."""
    if value is None or value == "none":
        return ()
    if value == "all":
        return ("tensorboard",)
    return (value,) if isinstance(value, str) else tuple(value)


def _backends(_instance, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if any(backend != "tensorboard" for backend in value):
        raise ValueError(
            f"{attribute.name} must be 'tensorboard', 'all', 'none' or a list of backends; "
            f"'tensorboard' is the only backend, got {list(value)}"
        )


EVALUATION_SETTINGS = frozenset(
    {
        "output_dir",
        "per_device_eval_batch_size",
        "dataloader_num_workers",
        "bad_images",
        "metric_for_best_model",
        "report_to",
    }
)
"""The settings an evaluation without training (`ofa eval`) reads; it leaves the others at their defaults, unchecked
(its precision is `--precision`, never `mixed_precision`)."""


@attrs.frozen(kw_only=True)
class TrainingConfig:
    """How to train: optimisation, schedule, precision, freezing, evaluation, checkpoints, logging.

    Batch sizes are per process; the global batch of one optimizer step is
    `per_device_train_batch_size * gradient_accumulation_steps * world_size` samples.
    """

    output_dir: str = attrs.field(validator=v.instance_of(str))
    """The run directory; recipes usually set the top-level `output_dir` instead."""
    num_train_epochs: float = attrs.field(default=3.0, converter=float, validator=_positive)
    max_steps: int = attrs.field(default=-1, validator=v.instance_of(int))
    """Optimizer steps to run; > 0 overrides `num_train_epochs`."""
    per_device_train_batch_size: int = attrs.field(default=8, validator=[v.instance_of(int), _positive])
    per_device_eval_batch_size: int = attrs.field(default=8, validator=[v.instance_of(int), _positive])
    gradient_accumulation_steps: int = attrs.field(default=1, validator=[v.instance_of(int), _positive])
    learning_rate: float = attrs.field(default=5e-5, converter=float, validator=_non_negative)
    weight_decay: float = attrs.field(default=0.0, converter=float, validator=_non_negative)
    adam_beta1: float = attrs.field(default=0.9, converter=float, validator=_probability)
    adam_beta2: float = attrs.field(default=0.999, converter=float, validator=_probability)
    adam_epsilon: float = attrs.field(default=1e-8, converter=float, validator=_positive)
    optim: Literal["adamw_torch", "adamw_torch_fused"] = attrs.field(
        default="adamw_torch_fused", validator=v.in_(("adamw_torch", "adamw_torch_fused"))
    )
    """AdamW in torch's fused kernel, one pass over weights, gradients and moments (transformers' default name
    with torch >= 2.8), or as torch runs it unfused (per tensor on a CPU, foreach on CUDA), which walks them
    several times. The two agree to float rounding, not bit for bit (docs/training.md)."""
    lr_scheduler_type: Literal["linear", "cosine", "constant", "polynomial"] = attrs.field(
        default="linear", validator=v.in_(("linear", "cosine", "constant", "polynomial"))
    )
    warmup_steps: int = attrs.field(default=0, validator=[v.instance_of(int), _non_negative])
    warmup_ratio: float = attrs.field(default=0.0, converter=float, validator=_probability)
    """Used when `warmup_steps` is 0: warm up for this fraction of all steps (OFA's scripts use 0.06)."""
    max_grad_norm: float = attrs.field(default=1.0, converter=float, validator=_non_negative)
    """0 disables clipping (the norm is still measured and logged)."""
    seed: int = attrs.field(default=42, validator=v.instance_of(int))
    logging_steps: int = attrs.field(default=50, validator=[v.instance_of(int), _positive])
    eval_strategy: Literal["no", "steps", "epoch"] = attrs.field(
        default="no", validator=v.in_(("no", "steps", "epoch"))
    )
    eval_steps: int | None = attrs.field(default=None, validator=v.optional([v.instance_of(int), _positive]))
    """Defaults to `logging_steps`, as in transformers."""
    save_strategy: Literal["no", "steps", "epoch"] = attrs.field(
        default="steps", validator=v.in_(("no", "steps", "epoch"))
    )
    save_steps: int = attrs.field(default=500, validator=[v.instance_of(int), _positive])
    save_total_limit: int | None = attrs.field(default=None, validator=v.optional([v.instance_of(int), _positive]))
    """Keep at most this many checkpoints; the best one (by `metric_for_best_model`) is never deleted."""
    metric_for_best_model: str | dict[str, float] | None = attrs.field(default=None, validator=_best_model_metric)
    """The score that picks the best checkpoint (`cider`; `caption/cider` in a multi-task recipe), or weights of
    several scores whose sum picks it (`{"caption/cider": 0.01, "vqa/vqa_acc": 1}`, greater is better unless
    `greater_is_better` is false); default: the first score of the first metric."""
    greater_is_better: bool | None = attrs.field(default=None, validator=v.optional(v.instance_of(bool)))
    """None: take the metric's own `higher_is_better`."""
    resume_from_checkpoint: str | None = attrs.field(default=None, validator=_resume)
    """'auto' (newest complete checkpoint in `output_dir`, if any), a checkpoint path, or None."""
    mixed_precision: Literal["no", "bf16", "fp16"] = attrs.field(default="no", validator=v.in_(("no", "bf16", "fp16")))
    """Training precision. bf16: autocast on CPU or CUDA; fp16: autocast with a gradient scaler, CUDA only. A run's
    evaluations compute under the same autocast (and say so); `ofa eval` never does (its `--precision`)."""
    label_smoothing: float = attrs.field(default=0.0, converter=float, validator=_probability)
    """ε of `Trainer`'s own loss when it gets no `loss_fn`; recipes set ε in their `loss` block instead."""
    freeze_encoder: bool = attrs.field(default=False, validator=v.instance_of(bool))
    """LiT: every encoder parameter, ResNet included (the shared word embedding stays as `freeze_word_embed` says)."""
    freeze_word_embed: bool = attrs.field(default=False, validator=v.instance_of(bool))
    """The shared token embedding, which is also the output projection."""
    freeze_image_backbone: bool = attrs.field(default=False, validator=v.instance_of(bool))
    """The ResNet that embeds image patches."""
    freeze_patterns: tuple[str, ...] = attrs.field(
        default=(), converter=tuple, validator=v.deep_iterable(v.instance_of(str))
    )
    """fnmatch patterns over parameter names, e.g. 'model.decoder.layers.0.*'."""
    group_by_image: bool = attrs.field(default=True, validator=v.instance_of(bool))
    """With a frozen encoder, batch the samples of one image together and encode that image once."""
    encoder_cache: bool = attrs.field(default=True, validator=v.instance_of(bool))
    """With `freeze_encoder` (and the word embedding frozen): compute each (image, source text)'s encoder output
    once per run and read it in later epochs instead of running the encoder (docs/training.md)."""
    encoder_cache_memory_mb: int = attrs.field(default=4096, validator=[v.instance_of(int), _non_negative])
    """Keep the encoder cache in memory (per process) when it fits this many MiB, else in a memory-mapped file
    under `output_dir/encoder-cache` that a resumed run reuses."""
    encoder_cache_dtype: Literal["auto", "float32", "float16", "bfloat16"] = attrs.field(
        default="auto", validator=v.in_(("auto", "float32", "float16", "bfloat16"))
    )
    """auto: in memory, the encoder output's own dtype (its values bit for bit); on disk, float16 (half of float32;
    later epochs' losses move by fp16 rounding)."""
    fsdp: bool | str = attrs.field(default=False, validator=v.in_((False, True, "full_shard", "shard_grad_op")))
    """False, True / 'full_shard', or 'shard_grad_op': shard the model with FSDP when distributed (no effect on one
    process)."""
    report_to: tuple[str, ...] = attrs.field(default=("tensorboard",), converter=_report_to, validator=_backends)
    """Where metrics go besides `log.jsonl`: 'tensorboard' (also 'all'), 'none', or a list, as in transformers."""
    dataloader_num_workers: int = attrs.field(default=0, validator=[v.instance_of(int), _non_negative])
    cache_images: bool = attrs.field(default=False, validator=v.instance_of(bool))
    """Keep each training image in memory once decoded and resized, so later epochs skip the work; for data that
    fits in RAM (3 x size x size x 4 bytes an image: the demo's 3,000 photos at 64 px take 150 MB), once per
    DataLoader worker."""
    bad_images: Literal["skip", "error"] = attrs.field(default="skip", validator=v.in_(("skip", "error")))
    """A record whose image cannot be decoded is skipped (and counted) or stops the run."""
    num_sample_predictions: int = attrs.field(default=4, validator=[v.instance_of(int), _non_negative])
    """Predictions written to TensorBoard as text at each evaluation."""

    @property
    def eval_interval(self) -> int:
        return self.eval_steps or self.logging_steps

    def freezes(self, name: str) -> bool:
        """Whether parameter `name` stays frozen. Pure, so a recipe's freezing is checked against the names in the
        saved weights before any model loads; the shared embedding follows `freeze_word_embed` only."""
        if name == WORD_EMBED:
            return self.freeze_word_embed
        if self.freeze_encoder and name.startswith("model.encoder."):
            return True
        if self.freeze_image_backbone and name.startswith("model.encoder.embed_images."):
            return True
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.freeze_patterns)
