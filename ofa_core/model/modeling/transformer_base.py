"""What the encoder and decoder stacks share: embeddings, position tables and relative biases."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling.positions import num_image_relative_buckets


def head_bias(table: nn.Embedding, buckets: torch.Tensor) -> torch.Tensor:
    """`[Q, K]` bucket ids -> `[H, Q, K]` biases."""
    return F.embedding(buckets, table.weight).permute(2, 0, 1)


class OFATransformerBase(nn.Module):
    """Base of `OFAEncoder` and `OFADecoder`; parameter names match the official checkpoints.

    Each stack owns absolute text/image position tables with their own LayerNorms (they
    feed the attention biases, never the inputs) and, per layer, one text and one image
    relative-position table mapping a bucket to a bias per head.
    """

    def __init__(self, config: OFAConfig, embed_tokens: nn.Embedding, heads: int, layers: int) -> None:
        super().__init__()
        d = config.d_model
        self.config = config
        self.embed_tokens = embed_tokens
        self.embed_scale = d**0.5 if config.scale_embedding else 1.0
        self.dropout = nn.Dropout(config.dropout)
        self.layernorm_embedding = nn.LayerNorm(d) if config.layernorm_embedding else None
        self.embed_positions = nn.Embedding(config.max_position_embeddings + 2, d)
        self.embed_image_positions = nn.Embedding(config.image_bucket_size**2 + 1, d)
        self.pos_ln = nn.LayerNorm(d)
        self.image_pos_ln = nn.LayerNorm(d)
        self.pos_scaling = (d / heads * config.attn_scale_factor) ** -0.5
        self.layer_norm = nn.LayerNorm(d)
        text_buckets = 2 * config.token_bucket_size - 1
        image_buckets = num_image_relative_buckets(config.image_bucket_size)
        self.token_rel_pos_table_list = nn.ModuleList(nn.Embedding(text_buckets, heads) for _ in range(layers))
        self.image_rel_pos_table_list = nn.ModuleList(nn.Embedding(image_buckets, heads) for _ in range(layers))
