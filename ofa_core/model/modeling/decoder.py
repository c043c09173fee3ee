"""The OFA decoder: pre-LN layers whose attention biases come from positions alone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.cache_utils import Cache, EncoderDecoderCache

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling.drop_path import drop_path_rates
from ofa_core.model.modeling.layers import OFADecoderLayer
from ofa_core.model.modeling.peft import OFAPromptEncoder, PromptKeyValues
from ofa_core.model.modeling.positions import text_relative_buckets
from ofa_core.model.modeling.transformer_base import OFATransformerBase, head_bias


@dataclass
class DecoderPositionBias:
    """Self- and cross-attention biases for a range of decoder positions.

    They depend only on positions and weights, never on tokens, so a search computes
    them once for its longest output and slices one row per step.

    self_bias: per layer `[H, Q, K]` (absolute + relative + causal mask).
    cross_bias: `[H, Q, S]` (absolute only, shared by all layers).
    """

    self_bias: list[torch.Tensor]
    cross_bias: torch.Tensor

    def rows(self, start: int, length: int) -> DecoderPositionBias:
        stop = start + length
        return DecoderPositionBias(
            [bias[:, start:stop, :stop] for bias in self.self_bias], self.cross_bias[:, start:stop]
        )


class OFADecoder(OFATransformerBase):
    """Decoder stack.

    `code_layernorm_embedding`, `embed_image_positions`, `image_pos_ln` and the image
    relative tables serve image-code generation in the official model; text decoding
    does not read them, but they are part of every official checkpoint.
    """

    def __init__(self, config: OFAConfig, embed_tokens: nn.Embedding) -> None:
        super().__init__(config, embed_tokens, config.decoder_attention_heads, config.decoder_layers)
        d = config.d_model
        self.code_layernorm_embedding = nn.LayerNorm(d) if config.code_layernorm_embedding else None
        self.self_pos_q_linear = nn.Linear(d, d)
        self.self_pos_k_linear = nn.Linear(d, d)
        self.cross_pos_q_linear = nn.Linear(d, d)
        self.cross_pos_k_linear = nn.Linear(d, d)
        rates = drop_path_rates(config.decoder_drop_path_rate, config.decoder_layers)
        self.layers = nn.ModuleList(OFADecoderLayer(config, index, rate) for index, rate in enumerate(rates))
        self.decoder_prompt_encoder = OFAPromptEncoder.for_side(config, "decoder")

    def prompt_key_values(self, rows: int = 1) -> PromptKeyValues:
        """The learned self-attention prompts (none without `decoder_prompt`); a search computes them once."""
        return self.decoder_prompt_encoder(rows) if self.decoder_prompt_encoder is not None else []

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], self.config.decoder_attention_heads, -1).transpose(0, 1)

    def cross_position_keys(self, encoder_position_embeddings: torch.Tensor) -> torch.Tensor:
        """`[H, S, D/H]` keys of the cross-attention position bias; the same for every decoder position."""
        # Position embeddings are identical across the batch by construction: use the first row.
        return self._heads(self.cross_pos_k_linear(encoder_position_embeddings[0]))

    def position_bias(
        self,
        start: int,
        length: int,
        encoder_position_embeddings: torch.Tensor | None,
        cross_keys: torch.Tensor | None = None,
    ) -> DecoderPositionBias:
        """Biases for query positions `start .. start+length-1` over keys `0 .. start+length-1`.

        `cross_keys` (`cross_position_keys`) stand in for the encoder's position embeddings where they were
        computed once, as an exported decoder-step graph receives them."""
        if cross_keys is None:
            cross_keys = self.cross_position_keys(encoder_position_embeddings)
        device = cross_keys.device
        key_positions = torch.arange(start + length, device=device)
        query_positions = key_positions[start:]
        normed = self.pos_ln(self.embed_positions(key_positions))
        query = normed[start:]
        self_abs = (self._heads(self.self_pos_q_linear(query)) * self.pos_scaling) @ self._heads(
            self.self_pos_k_linear(normed)
        ).transpose(1, 2)
        cross_bias = (self._heads(self.cross_pos_q_linear(query)) * self.pos_scaling) @ cross_keys.transpose(1, 2)
        buckets = text_relative_buckets(
            query_positions, key_positions, self.config.token_bucket_size, self.config.max_position_embeddings
        )
        causal = torch.zeros(buckets.shape, dtype=self_abs.dtype, device=device)
        causal.masked_fill_(key_positions[None, :] > query_positions[:, None], float("-inf"))
        self_bias = [self_abs + head_bias(table, buckets) + causal for table in self.token_rel_pos_table_list]
        return DecoderPositionBias(self_bias, cross_bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_padding_mask: torch.Tensor | None,
        encoder_position_embeddings: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        position_bias: DecoderPositionBias | None = None,
        output_hidden_states: bool = False,
        prompts: PromptKeyValues | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Returns the final hidden states `[B, Tq, D]` (and every layer's when asked).

        With a cache, `input_ids` holds only the new tokens.  `encoder_*` may have fewer
        rows than `input_ids` (one per image, shared by its beams).  `prompts`: `prompt_key_values()` computed
        beforehand (they depend on the weights alone); computed here when not given.
        """
        length = input_ids.shape[1]
        past = 0
        if cache is not None:
            self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
            past = self_cache.get_seq_length()
        if position_bias is None:
            position_bias = self.position_bias(past, length, encoder_position_embeddings)
        x = self.embed_scale * self.embed_tokens(input_ids)
        if not self.config.disable_entangle:
            # fairseq adds the raw position embedding whenever entangling is not disabled.
            x = x + self.embed_positions(torch.arange(past, past + length, device=x.device))
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        x = self.dropout(x)
        # Like fairseq, pad tokens are masked as keys; causality already hides them from real tokens.
        self_padding = input_ids.eq(self.config.pad_token_id) if attention_mask is None else ~attention_mask.bool()
        if past or not bool(self_padding.any()):
            self_padding = None
        if encoder_padding_mask is not None and not bool(encoder_padding_mask.any()):
            encoder_padding_mask = None
        if prompts is None:
            prompts = self.prompt_key_values(input_ids.shape[0])
        hidden_states = (x,) if output_hidden_states else None
        for index, layer in enumerate(self.layers):
            x = layer(
                x,
                position_bias.self_bias[index],
                self_padding,
                encoder_hidden_states,
                position_bias.cross_bias,
                encoder_padding_mask,
                cache,
                prompts[index] if index < len(prompts) else None,
            )
            if output_hidden_states:
                hidden_states += (x,)
        return self.layer_norm(x), hidden_states
