"""Helpers for tests of ofa_core and of plugins: tiny models with informative random weights."""

from __future__ import annotations

import zlib

import torch

from ofa_core.configuration import OFAConfig
from ofa_core.modeling import OFAForConditionalGeneration


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0, scale: float = 0.5) -> torch.nn.Module:
    """Fill every parameter and BatchNorm statistic with seeded noise.

    A freshly initialised model predicts nearly the same token everywhere; wide random
    weights make outputs depend on every input, which is what equality tests need.
    """
    def noise_for(name: str, shape: torch.Size, uniform: bool = False) -> torch.Tensor:
        # Seeded by name, so the values do not depend on the order modules are declared in.
        generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        return torch.rand(shape, generator=generator) if uniform else torch.randn(shape, generator=generator)

    for name, parameter in model.named_parameters():
        noise = noise_for(name, parameter.shape)
        is_norm = any(part in name for part in ("layer_norm.", "layernorm", "_ln."))
        if (is_norm and name.endswith("weight")) or name.endswith(("c_attn", "w_resid")):
            parameter.copy_(1.0 + 0.2 * noise)
        elif "bn" in name or "downsample.1" in name:
            parameter.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
        else:
            parameter.copy_(noise * (scale if parameter.dim() > 1 else 0.1))
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.copy_(0.1 * noise_for(name, buffer.shape))
        elif name.endswith("running_var"):
            buffer.copy_(0.5 + noise_for(name, buffer.shape, uniform=True))
    return model


def tiny_model(seed: int = 0, preset: str = "tiny-test", scale: float = 0.5, **overrides) -> OFAForConditionalGeneration:
    """A preset (by default `tiny-test`) with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    model = OFAForConditionalGeneration(OFAConfig.from_preset(preset, **overrides))
    return randomize_(model, seed, scale).eval()
