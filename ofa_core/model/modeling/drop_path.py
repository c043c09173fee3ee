"""Stochastic depth, dropping whole residual branches per sample."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero a residual branch for a random subset of samples (dimension 0) while training."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = torch.rand(shape, dtype=x.dtype, device=x.device).add_(keep).floor_()
        return x / keep * mask

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def drop_path_rates(rate: float, count: int) -> list[float]:
    """Rates rising linearly from 0 to `rate` over `count` layers (plain floats: safe on the meta device)."""
    if count == 1:
        return [0.0]
    return [rate * index / (count - 1) for index in range(count)]
