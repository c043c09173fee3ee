"""AdamW with the usual decay exemptions, the gradients' scale and clip in one pass, and warmup + decay schedules.

A `LambdaLR` over a pure function of the step keeps the scheduler's state a step counter,
which saves and loads with `weights_only=True`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ofa_core.recipe.training import TrainingConfig


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters split into decayed (matrices) and undecayed (biases, norms, scales, tables)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_norm = "norm" in name or "_ln." in name or ".bn" in name or "downsample.1" in name
        (no_decay if parameter.dim() < 2 or is_norm else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        parameter_groups(model, config.weight_decay),
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        fused=config.optim == "adamw_torch_fused" or None,
    )


def scale_and_clip_(parameters: list[torch.Tensor], scale: float, max_norm: float) -> torch.Tensor:
    """Multiply the gradients by `scale`, clipped to total norm `max_norm`, in one pass; return the scaled norm.

    The same result as `grad.mul_(scale)` then `clip_grad_norm_`, which walk the gradients three times; this walks
    them twice: the norm is taken of the raw gradients (scaled as a number) and one multiplication applies both
    factors. Gradients
    differ from the two-pass result by float rounding (one product instead of two).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norm = torch.nn.utils.get_total_norm(grads) * scale
    factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0) * scale
    for grad in grads:  # on a CPU foreach kernels loop over the tensors too; this also takes FSDP's DTensors
        grad.mul_(factor)
    return norm


def warmup_steps(config: TrainingConfig, total_steps: int) -> int:
    return config.warmup_steps or math.ceil(config.warmup_ratio * total_steps)


def lr_factor(kind: str, step: int, warmup: int, total: int) -> float:
    """Multiplier of the peak learning rate at `step` (transformers' schedules; polynomial = power 1 to 0, as OFA)."""
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress  # linear, and polynomial decay with power 1 and end lr 0


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainingConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = warmup_steps(config, total_steps)
    kind = config.lr_scheduler_type
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(kind, step, warmup, total_steps))
