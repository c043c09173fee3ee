"""The OFA encoder: image patches from the ResNet trunk, then text, through pre-LN layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling.drop_path import drop_path_rates
from ofa_core.model.modeling.layers import OFAEncoderLayer
from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.model.modeling.peft import OFAPromptEncoder
from ofa_core.model.modeling.positions import image_position_ids, image_relative_buckets, text_relative_buckets
from ofa_core.model.modeling.resnet import ResNetTrunk
from ofa_core.model.modeling.transformer_base import OFATransformerBase, head_bias

RESNET_CHANNELS = 1024


class OFAEncoder(OFATransformerBase):
    def __init__(self, config: OFAConfig, embed_tokens: nn.Embedding) -> None:
        super().__init__(config, embed_tokens, config.encoder_attention_heads, config.encoder_layers)
        d = config.d_model
        self.patch_layernorm_embedding = nn.LayerNorm(d) if config.patch_layernorm_embedding else None
        self.type_embedding = nn.Embedding(2, d) if config.add_type_embedding else None
        self.embed_images = ResNetTrunk(config.resnet_layers, config.resnet_drop_path_rate)
        self.image_proj = nn.Linear(RESNET_CHANNELS, d)
        self.pos_q_linear = nn.Linear(d, d)
        self.pos_k_linear = nn.Linear(d, d)
        rates = drop_path_rates(config.encoder_drop_path_rate, config.encoder_layers)
        self.layers = nn.ModuleList(OFAEncoderLayer(config, rate) for rate in rates)
        self.encoder_prompt_encoder = OFAPromptEncoder.for_side(config, "encoder")

    def _embed_text(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.embed_scale * self.embed_tokens(input_ids)
        if self.config.entangle_position_embedding:
            x = x + positions
        if self.type_embedding is not None:
            x = x + self.type_embedding.weight[0]
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        return self.dropout(x)

    def _image_position_embeddings(self, height: int, width: int, ids: torch.Tensor) -> torch.Tensor:
        """Absolute patch embeddings, interpolated from the pretraining grid when the checkpoint asks for it."""
        orig = self.config.orig_patch_image_size // 16
        if not (self.config.interpolate_position and height * width > orig * orig):
            return self.embed_image_positions(ids)
        grid = self.embed_image_positions(image_position_ids(orig, orig, self.config.image_bucket_size, ids.device))
        grid = grid.reshape(1, orig, orig, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(height, width), mode="bilinear")
        return grid.permute(0, 2, 3, 1).reshape(height * width, -1)

    def _embed_images(self, patch_images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patch embeddings `[B, hw, D]`, their position embeddings `[hw, D]` and position ids `[hw]`."""
        features = self.embed_images(patch_images)
        height, width = features.shape[-2:]
        ids = image_position_ids(height, width, self.config.image_bucket_size, features.device)
        positions = self._image_position_embeddings(height, width, ids)
        x = self.embed_scale * self.image_proj(features.flatten(2).transpose(1, 2))
        if self.config.entangle_position_embedding:
            x = x + positions
        if self.type_embedding is not None:
            x = x + self.type_embedding.weight[1]
        if self.patch_layernorm_embedding is not None:
            x = self.patch_layernorm_embedding(x)
        return self.dropout(x), positions, ids

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        patch_images: torch.Tensor | None = None,
        patch_masks: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        **kwargs,
    ) -> OFAEncoderOutput:
        batch, text_len = input_ids.shape
        device = input_ids.device
        text_padding = input_ids.eq(self.config.pad_token_id) if attention_mask is None else ~attention_mask.bool()
        text_positions = self.embed_positions(torch.arange(text_len, device=device))
        x = self._embed_text(input_ids, text_positions)
        positions = self.pos_ln(text_positions)
        padding = text_padding
        image_len, image_ids = 0, None
        if patch_images is not None:
            image_x, image_positions, image_ids = self._embed_images(patch_images.to(x.dtype))
            image_len = image_x.shape[1]
            image_padding = torch.zeros(batch, image_len, dtype=torch.bool, device=device)
            if patch_masks is not None:
                image_padding = image_padding | ~patch_masks.bool()[:, None]
            x = torch.cat([image_x, x], dim=1)
            positions = torch.cat([self.image_pos_ln(image_positions), positions], dim=0)
            padding = torch.cat([image_padding, text_padding], dim=1)
        has_padding = bool(padding.any())
        if has_padding:
            x = x * (1 - padding.unsqueeze(-1).to(x.dtype))

        total, heads = positions.shape[0], self.config.encoder_attention_heads
        query = self.pos_q_linear(positions).view(total, heads, -1).transpose(0, 1) * self.pos_scaling
        key = self.pos_k_linear(positions).view(total, heads, -1).transpose(0, 1)
        absolute_bias = query @ key.transpose(1, 2)
        text_ids = torch.arange(text_len, device=device)
        text_buckets = text_relative_buckets(
            text_ids, text_ids, self.config.token_bucket_size, self.config.max_position_embeddings
        )
        image_buckets = None
        if image_ids is not None:
            image_buckets = image_relative_buckets(image_ids, image_ids, self.config.image_bucket_size)

        prompts = self.encoder_prompt_encoder(batch) if self.encoder_prompt_encoder is not None else []
        hidden_states = (x,) if output_hidden_states else None
        for index, layer in enumerate(self.layers):
            # Relative biases padded to the full square rather than added into slices: the same sums, and an exported
            # graph gets two Pad ops instead of scatters of the whole bias per layer.
            text_bias = head_bias(self.token_rel_pos_table_list[index], text_buckets)
            bias = absolute_bias + F.pad(text_bias, (image_len, 0, image_len, 0))
            if image_buckets is not None:
                image_bias = head_bias(self.image_rel_pos_table_list[index], image_buckets)
                bias = bias + F.pad(image_bias, (0, text_len, 0, text_len))
            x = layer(x, bias, padding if has_padding else None, prompts[index] if index < len(prompts) else None)
            if output_hidden_states:
                hidden_states += (x,)
        x = self.layer_norm(x)
        return OFAEncoderOutput(
            last_hidden_state=x,
            hidden_states=hidden_states,
            padding_mask=padding,
            position_embeddings=positions.unsqueeze(0).expand(batch, -1, -1),
        )
