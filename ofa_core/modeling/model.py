"""OFA as transformers models: `OFAModel` (encoder-decoder) and `OFAForConditionalGeneration`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import Seq2SeqLMOutput, Seq2SeqModelOutput

from ofa_core.configuration import OFAConfig
from ofa_core.modeling.attention import OFAAttention
from ofa_core.modeling.decoder import DecoderPositionBias, OFADecoder
from ofa_core.modeling.encoder import OFAEncoder
from ofa_core.modeling.layers import _LayerBase
from ofa_core.modeling.outputs import OFAEncoderOutput


class OFAPreTrainedModel(PreTrainedModel):
    config_class = OFAConfig
    config: OFAConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _no_split_modules = ["OFAEncoderLayer", "OFADecoderLayer"]
    _keys_to_ignore_on_load_unexpected = [r"version$", r"rp_bucket$", r"image_position_idx$"]

    def _init_weights(self, module: nn.Module) -> None:
        """BERT-style normal init for linear/embedding, kaiming for convolutions, ones for scales."""
        super()._init_weights(module)
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, OFAAttention) and module.c_attn is not None:
            init.ones_(module.c_attn)
        elif isinstance(module, _LayerBase) and module.w_resid is not None:
            init.ones_(module.w_resid)


def shift_right(labels: torch.Tensor, start_id: int, pad_id: int) -> torch.Tensor:
    """Decoder inputs from targets: start token first, ignored positions (-100) become padding."""
    shifted = labels.new_full(labels.shape, pad_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = start_id
    return shifted.masked_fill(shifted.eq(-100), pad_id)


class OFAModel(OFAPreTrainedModel):
    _tied_weights_keys = {
        "encoder.embed_tokens.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
    }

    def __init__(self, config: OFAConfig) -> None:
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.encoder = OFAEncoder(config, self.shared)
        self.decoder = OFADecoder(config, self.shared)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value
        self.encoder.embed_tokens = value
        self.decoder.embed_tokens = value

    def get_encoder(self) -> OFAEncoder:
        return self.encoder

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        patch_images: torch.Tensor | None = None,
        patch_masks: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: OFAEncoderOutput | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        position_bias: DecoderPositionBias | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput:
        output_hidden_states = bool(output_hidden_states)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids,
                attention_mask=attention_mask,
                patch_images=patch_images,
                patch_masks=patch_masks,
                output_hidden_states=output_hidden_states,
            )
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None and not self.training:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        if not use_cache:
            cache = None
        hidden, decoder_hidden = self.decoder(
            decoder_input_ids,
            encoder_outputs.last_hidden_state,
            encoder_outputs.padding_mask,
            encoder_outputs.position_embeddings,
            attention_mask=decoder_attention_mask,
            cache=cache,
            position_bias=position_bias,
            output_hidden_states=output_hidden_states,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=hidden,
            cache=cache,
            decoder_hidden_states=decoder_hidden,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
        )


class OFAForConditionalGeneration(OFAPreTrainedModel, GenerationMixin):
    """OFA with its output projection (tied to the shared embedding), for training and `generate()`."""

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}

    def __init__(self, config: OFAConfig) -> None:
        super().__init__(config)
        self.model = OFAModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def get_encoder(self) -> OFAEncoder:
        return self.model.encoder

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        patch_images: torch.Tensor | None = None,
        patch_masks: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: OFAEncoderOutput | None = None,
        cache: Cache | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        position_bias: DecoderPositionBias | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        """`labels`: target ids with -100 where no loss is taken; the loss is the mean token cross entropy."""
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = shift_right(labels, self.config.decoder_start_token_id, self.config.pad_token_id)
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            patch_images=patch_images,
            patch_masks=patch_masks,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            position_bias=position_bias,
        )
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
        )
