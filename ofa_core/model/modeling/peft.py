"""Official OFA's parameter-efficient modules: learned key/value prompts and bottleneck adapters.

Names match the official checkpoints (`encoder_prompt_encoder.embedding`, `.trans.0`, `.trans.2`;
`layers.N.adapter.down_proj`, `.up_proj`), so their weights map one to one and a trainer can select them by name.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

PROMPT_DROPOUT = 0.2
"""The official prompt encoders drop their key/values at this fixed rate while training (not a model flag)."""

PromptKeyValues = list[tuple[torch.Tensor, torch.Tensor]]
"""Per prompted layer, keys and values `[rows, H, P, D/H]` (rows 1 in eval: the same for every sample)."""


class OFAPromptEncoder(nn.Module):
    """Keys and values that every prompted self-attention layer sees before its own.

    The official prompt tokens are always `0 .. length-1`, so the prompt depends on the weights alone: an
    embedding of `length` rows, optionally widened by a two-layer MLP (`projection`), split per layer and head.
    """

    def __init__(self, *, length: int, layers: int, heads: int, d_model: int, projection: bool, proj_dim: int) -> None:
        super().__init__()
        self.layers, self.heads, self.head_dim = layers, heads, d_model // heads
        width = layers * 2 * d_model
        self.embedding = nn.Embedding(length, d_model if projection else width)
        self.trans = (
            nn.Sequential(nn.Linear(d_model, proj_dim), nn.ReLU(), nn.Linear(proj_dim, width)) if projection else None
        )
        self.dropout = nn.Dropout(PROMPT_DROPOUT)

    @classmethod
    def for_side(cls, config: Any, side: str) -> OFAPromptEncoder | None:
        """The encoder's or decoder's prompts as `config` sets them (`<side>_prompt*`), or None when it has none."""
        if not getattr(config, f"{side}_prompt"):
            return None
        return cls(
            length=getattr(config, f"{side}_prompt_length"),
            layers=config.prompt_layers(side),
            heads=getattr(config, f"{side}_attention_heads"),
            d_model=config.d_model,
            projection=getattr(config, f"{side}_prompt_projection"),
            proj_dim=getattr(config, f"{side}_prompt_dim"),
        )

    def forward(self, rows: int = 1) -> PromptKeyValues:
        """While training each of `rows` samples gets its own dropout mask, as the official batch of prompts does."""
        prompt = self.embedding.weight
        if self.trans is not None:
            prompt = self.trans(prompt)
        if self.training:
            prompt = self.dropout(prompt.expand(rows, *prompt.shape))
        else:
            prompt = prompt.unsqueeze(0)
        # [rows, P, layers * 2 * D] -> [layers * 2, rows, H, P, D/H]: keys then values of each layer.
        split = prompt.view(prompt.shape[0], prompt.shape[1], self.layers * 2, self.heads, self.head_dim)
        split = split.permute(2, 0, 3, 1, 4)
        return [(split[2 * layer], split[2 * layer + 1]) for layer in range(self.layers)]


class OFAAdapter(nn.Module):
    """`x + up(relu(down(x)))` on a layer's feed-forward output, before it joins the residual stream."""

    def __init__(self, d_model: int, adapter_dim: int) -> None:
        super().__init__()
        self.down_proj = nn.Linear(d_model, adapter_dim)
        self.up_proj = nn.Linear(adapter_dim, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up_proj(torch.relu(self.down_proj(x)))
