"""Pre-LayerNorm encoder and decoder layers with OFA's NormFormer additions."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling.attention import OFAAttention
from ofa_core.model.modeling.drop_path import DropPath
from ofa_core.model.modeling.peft import OFAAdapter


class _LayerBase(nn.Module):
    """What both layer kinds share: the feed-forward block and the residual plumbing.

    The FFN is fc1 -> activation (in fp32, as fairseq) -> optional LayerNorm over the
    inner dimension (NormFormer) -> fc2, added back with dropout, drop-path and the
    optional residual weight `w_resid`.  With `config.adapter` the FFN output passes the adapter before it is added,
    where the official layers put it.  Parameter names match the official checkpoints.
    """

    def __init__(self, config: OFAConfig, ffn_dim: int, drop_path: float) -> None:
        super().__init__()
        d = config.d_model
        self.fc1 = nn.Linear(d, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d)
        self.ffn_layer_norm = nn.LayerNorm(ffn_dim) if config.scale_fc else None
        self.final_layer_norm = nn.LayerNorm(d)
        self.w_resid = nn.Parameter(torch.ones(d)) if config.scale_resids else None
        self.activation = ACT2FN[config.activation_function]
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.dropout = nn.Dropout(config.dropout)
        self.drop_path = DropPath(drop_path)
        self.adapter = OFAAdapter(d, config.adapter_dim) if config.adapter else None

    def add(self, residual: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return residual + self.drop_path(self.dropout(branch))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(self.final_layer_norm(x))
        hidden = self.activation_dropout(self.activation(hidden.float()).to(hidden.dtype))
        if self.ffn_layer_norm is not None:
            hidden = self.ffn_layer_norm(hidden)
        residual = x if self.w_resid is None else self.w_resid * x
        branch = self.dropout(self.fc2(hidden))
        if self.adapter is not None:
            branch = self.adapter(branch)
        return residual + self.drop_path(branch)


class OFAEncoderLayer(_LayerBase):
    def __init__(self, config: OFAConfig, drop_path: float = 0.0) -> None:
        super().__init__(config, config.encoder_ffn_dim, drop_path)
        d = config.d_model
        self.self_attn = OFAAttention(
            d,
            config.encoder_attention_heads,
            dropout=config.attention_dropout,
            scale_factor=config.attn_scale_factor,
            scale_heads=config.scale_heads,
        )
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.self_attn_mid_layer_norm = nn.LayerNorm(d) if config.scale_attn else None

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor,
        padding_mask: torch.Tensor | None,
        prompt: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        attended = self.self_attn(self.self_attn_layer_norm(x), bias, padding_mask, prompt=prompt)
        if self.self_attn_mid_layer_norm is not None:
            attended = self.self_attn_mid_layer_norm(attended)
        x = self.add(x, attended)
        return self.feed_forward(x)


class OFADecoderLayer(_LayerBase):
    def __init__(self, config: OFAConfig, layer_idx: int, drop_path: float = 0.0) -> None:
        super().__init__(config, config.decoder_ffn_dim, drop_path)
        d = config.d_model
        common = dict(
            dropout=config.attention_dropout,
            scale_factor=config.attn_scale_factor,
            scale_heads=config.scale_heads,
            layer_idx=layer_idx,
        )
        self.self_attn = OFAAttention(d, config.decoder_attention_heads, **common)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.self_attn_mid_layer_norm = nn.LayerNorm(d) if config.scale_attn else None
        self.cross_attn = OFAAttention(d, config.decoder_attention_heads, is_cross_attention=True, **common)
        self.cross_attn_layer_norm = nn.LayerNorm(d)
        self.cross_attn_mid_layer_norm = nn.LayerNorm(d) if config.scale_attn else None

    def forward(
        self,
        x: torch.Tensor,
        self_bias: torch.Tensor,
        self_padding_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        cross_bias: torch.Tensor,
        encoder_padding_mask: torch.Tensor | None,
        cache: Cache | None,
        prompt: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """`prompt` extends self-attention only; the official decoder gives cross-attention none."""
        attended = self.self_attn(
            self.self_attn_layer_norm(x), self_bias, self_padding_mask, cache=cache, prompt=prompt
        )
        if self.self_attn_mid_layer_norm is not None:
            attended = self.self_attn_mid_layer_norm(attended)
        x = self.add(x, attended)
        attended = self.cross_attn(
            self.cross_attn_layer_norm(x),
            cross_bias,
            encoder_padding_mask,
            key_value_states=encoder_hidden_states,
            cache=cache,
        )
        if self.cross_attn_mid_layer_norm is not None:
            attended = self.cross_attn_mid_layer_norm(attended)
        x = self.add(x, attended)
        return self.feed_forward(x)
