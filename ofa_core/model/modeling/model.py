"""OFA as transformers models: `OFAModel` (encoder-decoder) and `OFAForConditionalGeneration`."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.generation.utils import GenerateBeamEncoderDecoderOutput
from transformers.modeling_outputs import Seq2SeqLMOutput, Seq2SeqModelOutput

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.modeling.attention import OFAAttention
from ofa_core.model.modeling.beam_search import AllowedTokensFn, TorchBackend, official_search
from ofa_core.model.modeling.decoder import DecoderPositionBias, OFADecoder
from ofa_core.model.modeling.encoder import OFAEncoder
from ofa_core.model.modeling.layers import _LayerBase
from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.model.search import SearchSettings, special_token_ids


class OFAPreTrainedModel(PreTrainedModel):
    config_class = OFAConfig
    config: OFAConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _no_split_modules = ["OFAEncoderLayer", "OFADecoderLayer"]
    _keys_to_ignore_on_load_unexpected = [r"version$", r"rp_bucket$", r"image_position_idx$"]

    checkpoint_readers: ClassVar[list[Callable[[str], tuple[OFAConfig, dict] | None]]] = []
    """Readers of other checkpoint layouts, tried before transformers' own loading: `reader(path)` returns
    `(config, state_dict)` for a directory it understands, else None. `ofa_core.register_auto_classes()` adds the
    reader of the published transformers ports (OFA-Sys/ofa-*, YeungNLP/ofa-cn-*) from `ofa_core.convert`."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' loading, or, for a directory one of `checkpoint_readers` understands, its weights converted
        in memory."""
        path = os.fspath(pretrained_model_name_or_path)
        for reader in OFAPreTrainedModel.checkpoint_readers:
            found = reader(path)
            if found is not None:
                break
        else:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        config, state = found
        if cls is OFAModel:
            state = {key.removeprefix("model."): value for key, value in state.items() if key.startswith("model.")}
        with torch.device("meta"):
            model = cls(config)
        model.load_state_dict(state, strict=True, assign=True)
        model.tie_weights()
        return model.eval()

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
    """Decoder inputs from targets: start token first, ignored positions (IGNORE_INDEX) become padding."""
    shifted = labels.new_full(labels.shape, pad_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = start_id
    return shifted.masked_fill(shifted.eq(IGNORE_INDEX), pad_id)


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
        self.generation_config = official_generation_config("default", **special_token_ids(config))

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
        """`labels`: target ids with IGNORE_INDEX where no loss is taken; the loss is the mean token cross entropy."""
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
            loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
        )

    # Options transformers' search understands and ours does not: they route to `super().generate`.
    _HF_ONLY_OPTIONS = ("logits_processor", "stopping_criteria", "constraints", "assistant_model", "streamer")

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        prefix_allowed_tokens_fn: AllowedTokensFn | None = None,
        search: str = "official",
        decoder_prompt_ids: torch.Tensor | None = None,
        **kwargs,
    ):
        """Generate with OFA's official (fairseq) search; `search="transformers"` uses transformers' own.

        Sampling and transformers-only options (logits processors, stopping criteria, ...)
        always go to transformers' search.

        Inputs are the processor's: `input_ids`, `attention_mask`, `patch_images`, `patch_masks`.
        Beam/greedy search ranks, normalises and stops exactly like fairseq; `max_new_tokens`
        counts the EOS (fairseq `max_len_b` = `max_new_tokens - 1`) and `min_new_tokens` is
        fairseq's `min_len`.  `prefix_allowed_tokens_fn(batch_id, tokens)` restricts each step
        before normalisation, as OFA's constrained decoding does.  `decoder_prompt_ids` ([B, P], right-padded
        with pad) are forced before the output as fairseq's `prefix_tokens` (OFA's `prev_output` prompts):
        the returned sequences hold them, and `prefix_allowed_tokens_fn` sees only what follows them.
        """
        config = copy.deepcopy(generation_config or self.generation_config)
        model_inputs = config.update(**kwargs)
        if search not in ("official", "transformers"):
            raise ValueError(f"search must be 'official' or 'transformers', not {search!r}")
        hf_only = any(model_inputs.get(name) is not None for name in self._HF_ONLY_OPTIONS)
        if search == "transformers" or config.do_sample or hf_only:
            if decoder_prompt_ids is not None:
                raise ValueError(
                    "decoder_prompt_ids are forced by the official search only; use search='official' without sampling"
                )
            return super().generate(
                input_ids, generation_config=config, prefix_allowed_tokens_fn=prefix_allowed_tokens_fn, **model_inputs
            )
        settings = SearchSettings.from_generation_config(config)
        sequences, scores = official_search(
            TorchBackend(self),
            settings,
            input_ids,
            prefix_allowed_tokens_fn,
            model_inputs=model_inputs,
            decoder_prompt_ids=decoder_prompt_ids,
        )
        if config.return_dict_in_generate:
            return GenerateBeamEncoderDecoderOutput(sequences=sequences, sequences_scores=scores)
        return sequences

    def search_backend(self) -> TorchBackend:
        """What the official search and answer ranking read this model through."""
        return TorchBackend(self)
