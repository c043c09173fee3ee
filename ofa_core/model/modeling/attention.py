"""OFA multi-head attention: additive position biases, 1/sqrt(2*d_head) scaling and head scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.cache_utils import Cache, EncoderDecoderCache


def padding_to_additive(padding_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bool `[B, K]` (True = padding) -> additive `[B, 1, 1, K]` with -inf on padding."""
    additive = torch.zeros(padding_mask.shape, dtype=dtype, device=padding_mask.device)
    return additive.masked_fill_(padding_mask, float("-inf"))[:, None, None, :]


class OFAAttention(nn.Module):
    """Scaled dot-product attention with OFA's extras.

    The position bias is added after scaling (it already carries its own scale), and
    NormFormer's per-head scale `c_attn` multiplies each head before `out_proj`.
    Cross-attention accepts more queries than encoder rows (`B_q = B_kv * groups`):
    the beams of one image then share that image's keys and values.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        dropout: float,
        scale_factor: float,
        scale_heads: bool,
        layer_idx: int | None = None,
        is_cross_attention: bool = False,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = (self.head_dim * scale_factor) ** -0.5
        self.dropout = dropout
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.c_attn = nn.Parameter(torch.ones(num_heads)) if scale_heads else None

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def project_keys_values(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`[B, K, D]` -> keys and values `[B, H, K, D/H]`; an exported encoder graph hands the cross ones on."""
        return self._split_heads(self.k_proj(states)), self._split_heads(self.v_proj(states))

    def _keys_values(
        self, hidden_states: torch.Tensor, key_value_states: torch.Tensor | None, cache: Cache | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.is_cross_attention:
            cross_cache = cache.cross_attention_cache if isinstance(cache, EncoderDecoderCache) else None
            if cross_cache is not None and cache.is_updated.get(self.layer_idx):
                layer = cross_cache.layers[self.layer_idx]
                return layer.keys, layer.values
            keys, values = self.project_keys_values(key_value_states)
            if cross_cache is not None:
                keys, values = cross_cache.update(keys, values, self.layer_idx)
                cache.is_updated[self.layer_idx] = True
            return keys, values
        keys, values = self.project_keys_values(hidden_states)
        if cache is not None:
            self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
            keys, values = self_cache.update(keys, values, self.layer_idx)
        return keys, values

    def forward(
        self,
        hidden_states: torch.Tensor,
        bias: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        key_value_states: torch.Tensor | None = None,
        cache: Cache | None = None,
        prompt: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """`bias`: `[H, Tq, K]` or `[B_kv, H, Tq, K]`; `key_padding_mask`: bool `[B_kv, K]`, True on padding.

        `prompt`: learned keys and values `[1 or B, H, P, D/H]` put before the layer's own, as the official
        `prompt_kv`: after the cache (which keeps only real keys), never padding, and without position bias.
        """
        batch, length, _ = hidden_states.shape
        query = self._split_heads(self.q_proj(hidden_states))
        keys, values = self._keys_values(hidden_states, key_value_states, cache)
        if prompt is not None:
            rows, prompt_len = keys.shape[0], prompt[0].shape[2]
            keys = torch.cat([prompt[0].expand(rows, -1, -1, -1).to(keys.dtype), keys], dim=2)
            values = torch.cat([prompt[1].expand(rows, -1, -1, -1).to(values.dtype), values], dim=2)
            bias = F.pad(bias, (prompt_len, 0))
            if key_padding_mask is not None:
                key_padding_mask = F.pad(key_padding_mask, (prompt_len, 0), value=False)
        groups = batch // keys.shape[0]
        if groups > 1:
            query = query.view(-1, groups, self.num_heads, length, self.head_dim).transpose(1, 2)
            query = query.reshape(-1, self.num_heads, groups * length, self.head_dim)
            bias = bias.unsqueeze(-3).expand(*bias.shape[:-2], groups, *bias.shape[-2:]).flatten(-3, -2)
        mask = bias.to(query.dtype)
        if key_padding_mask is not None:
            mask = mask + padding_to_additive(key_padding_mask, query.dtype)
        output = F.scaled_dot_product_attention(
            query, keys, values, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, scale=self.scaling
        )
        if groups > 1:
            output = output.view(-1, self.num_heads, groups, length, self.head_dim).transpose(1, 2)
            output = output.reshape(batch, self.num_heads, length, self.head_dim)
        if self.c_attn is not None:
            output = output * self.c_attn.view(1, -1, 1, 1).to(output.dtype)
        output = output.transpose(1, 2).reshape(batch, length, -1)
        return self.out_proj(output)
