"""AdamW with the usual decay exemptions, the gradients' scale and clip folded into the update, and warmup + decay
schedules.

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


def total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The gradients' L2 norm. Of fp32 tensors on a CPU: BLAS dot products, summed in float64, which take half the
    time of torch's norm kernel there and come closer to the exact value (3e-7 against 2e-5 relative error on the
    LiT shape, 2 threads); of any other (a GPU's, FSDP's DTensors), torch's `get_total_norm`."""
    if all(type(grad) is torch.Tensor and grad.device.type == "cpu" and grad.dtype == torch.float32 for grad in grads):
        squares = torch.stack([torch.dot(grad.reshape(-1), grad.reshape(-1)) for grad in grads])
        return squares.double().sum().sqrt().float()
    return torch.nn.utils.get_total_norm(grads)


def _norm_and_factor(grads: list[torch.Tensor], scale: float, max_norm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The norm of the scaled gradients, and the one factor that scales and clips them: the norm is taken of the raw
    gradients (scaled as a number), so the gradients need not be scaled first."""
    norm = total_norm(grads) * scale
    return norm, torch.clamp(max_norm / (norm + 1e-6), max=1.0) * scale


def scale_and_clip_(parameters: list[torch.Tensor], scale: float, max_norm: float) -> torch.Tensor:
    """Multiply the gradients by `scale`, clipped to total norm `max_norm`, in one pass; return the scaled norm.

    The same result as `grad.mul_(scale)` then `clip_grad_norm_`, which walk the gradients three times; this walks
    them twice (the norm, then one multiplication for both factors). Gradients differ from the two-pass result by
    float rounding (one product instead of two).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norm, factor = _norm_and_factor(grads, scale, max_norm)
    for grad in grads:  # on a CPU foreach kernels loop over the tensors too; this also takes FSDP's DTensors
        grad.mul_(factor)
    return norm


def scaled_step(
    optimizer: torch.optim.Optimizer, parameters: list[torch.Tensor], scale: float, max_norm: float
) -> torch.Tensor:
    """`scale_and_clip_` then `optimizer.step()`; return the scaled gradients' norm.

    Fused AdamW takes the factor itself, as the divisor `grad_scale` it otherwise gets from a `GradScaler`: its
    kernel, which reads every gradient anyway, divides it there, and the separate multiplication (a read and a write
    of every gradient) is saved. The update equals the multiplied one to float rounding (a division by the
    reciprocal instead of a product). Other optimizers and FSDP's sharded gradients are multiplied first.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads or not optimizer.defaults.get("fused") or hasattr(grads[0], "full_tensor"):  # FSDP's DTensors
        norm = scale_and_clip_(parameters, scale, max_norm)
        optimizer.step()
        return norm
    norm, factor = _norm_and_factor(grads, scale, max_norm)
    optimizer.grad_scale = factor.reciprocal().to(torch.float32)
    try:
        optimizer.step()
    finally:
        del optimizer.grad_scale
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
