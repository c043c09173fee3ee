"""`OFAConfig`: every switch of the official OFA family, with named presets.

Field names follow the transformers port of OFA where one exists, so configs of
published ports read naturally; the rest follow fairseq's argument names.
"""

from __future__ import annotations

from transformers import PreTrainedConfig

from ofa_core.model.presets import EN_VOCAB_SIZE, PRESETS
from ofa_core.model.presets import ZH_VOCAB_SIZE as ZH_VOCAB_SIZE  # converters import it from here

# Bottleneck block counts of the three ResNet stages OFA keeps (no layer4).
RESNET_LAYERS: dict[str, tuple[int, int, int]] = {
    "resnet18": (2, 2, 2),
    "resnet34": (3, 4, 6),
    "resnet50": (3, 4, 6),
    "resnet101": (3, 4, 23),
    "resnet152": (3, 8, 36),
}

PROMPT_TYPES = ("prefix", "prompt")


class OFAConfig(PreTrainedConfig):
    """Configuration of an OFA encoder-decoder (ResNet trunk + unified Transformer)."""

    model_type = "ofa"
    keys_to_ignore_at_inference = ["past_key_values", "cache"]
    attribute_map = {
        "num_attention_heads": "encoder_attention_heads",
        "hidden_size": "d_model",
        "num_hidden_layers": "encoder_layers",
    }

    vocab_size: int = EN_VOCAB_SIZE
    d_model: int = 768
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 12
    decoder_attention_heads: int = 12
    encoder_ffn_dim: int = 3072
    decoder_ffn_dim: int = 3072
    activation_function: str = "gelu"
    max_position_embeddings: int = 1024
    # Image trunk.
    resnet_type: str = "resnet101"
    resnet_drop_path_rate: float = 0.0
    # Position information: bucketed relative biases and the scale of attention logits.
    token_bucket_size: int = 256
    image_bucket_size: int = 42
    attn_scale_factor: float = 2.0
    code_image_size: int = 128
    entangle_position_embedding: bool = False
    disable_entangle: bool = True
    interpolate_position: bool = False
    orig_patch_image_size: int = 256
    # NormFormer switches (all official scripts pass scale_attn, scale_fc, scale_heads).
    scale_attn: bool = True
    scale_fc: bool = True
    scale_heads: bool = True
    scale_resids: bool = False
    # Embedding switches.
    layernorm_embedding: bool = True
    patch_layernorm_embedding: bool = True
    code_layernorm_embedding: bool = True
    add_type_embedding: bool = True
    scale_embedding: bool = False
    # Regularisation (training only).
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    encoder_drop_path_rate: float = 0.0
    decoder_drop_path_rate: float = 0.0
    init_std: float = 0.02
    # Parameter-efficient tuning (official `--encoder-prompt`, `--decoder-prompt`, `--adapter`; all off by default).
    # `prefix`: learned keys/values before every self-attention layer's own; `prompt`: the first layer's only.
    # `*_prompt_dim` is the hidden width of the projection (official default 2 * d_model when left None).
    encoder_prompt: bool = False
    encoder_prompt_type: str = "prefix"
    encoder_prompt_length: int = 100
    encoder_prompt_projection: bool = False
    encoder_prompt_dim: int | None = None
    decoder_prompt: bool = False
    decoder_prompt_type: str = "prefix"
    decoder_prompt_length: int = 100
    decoder_prompt_projection: bool = False
    decoder_prompt_dim: int | None = None
    # A bottleneck (d_model -> adapter_dim -> d_model) after every layer's feed-forward block.
    adapter: bool = False
    adapter_dim: int = 200
    # Vocabulary layout and preprocessing.
    language: str = "en"
    code_dict_size: int = 8192
    num_bins: int = 1000
    patch_image_size: int = 480
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    use_cache: bool = True
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    unk_token_id: int | None = 3
    decoder_start_token_id: int | None = 0
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        if self.image_mean is None:
            self.image_mean = [0.5, 0.5, 0.5]
        if self.image_std is None:
            self.image_std = [0.5, 0.5, 0.5]
        super().__post_init__(**kwargs)
        if self.resnet_type not in RESNET_LAYERS:
            raise ValueError(f"resnet_type {self.resnet_type!r} is not one of {sorted(RESNET_LAYERS)}")
        for side in ("encoder", "decoder"):
            heads = getattr(self, f"{side}_attention_heads")
            if self.d_model % heads:
                raise ValueError(f"d_model {self.d_model} is not divisible by {side}_attention_heads {heads}")
            if getattr(self, f"{side}_prompt_dim") is None:
                setattr(self, f"{side}_prompt_dim", 2 * self.d_model)
            kind = getattr(self, f"{side}_prompt_type")
            if kind not in PROMPT_TYPES:
                raise ValueError(f"{side}_prompt_type {kind!r} is not one of {', '.join(PROMPT_TYPES)}")
            for name in (f"{side}_prompt_length", f"{side}_prompt_dim"):
                if getattr(self, name) < 1:
                    raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.adapter_dim < 1:
            raise ValueError(f"adapter_dim must be at least 1, not {self.adapter_dim}")

    @property
    def resnet_layers(self) -> tuple[int, int, int]:
        return RESNET_LAYERS[self.resnet_type]

    def prompt_layers(self, side: str) -> int:
        """Layers of `side` ("encoder"/"decoder") that get learned key/value prompts: all (prefix) or the first."""
        if not getattr(self, f"{side}_prompt"):
            return 0
        return getattr(self, f"{side}_layers") if getattr(self, f"{side}_prompt_type") == "prefix" else 1

    @property
    def mask_token_id(self) -> int:
        """`<mask>` comes right before the image codes and location bins."""
        return self.vocab_size - self.num_bins - self.code_dict_size - 1

    @property
    def code_start_id(self) -> int:
        return self.vocab_size - self.num_bins - self.code_dict_size

    @property
    def bin_start_id(self) -> int:
        return self.vocab_size - self.num_bins

    @classmethod
    def from_preset(cls, name: str, **overrides) -> OFAConfig:
        """A config for an official size (`ofa-base`, `ofa-cn-large`, ...) or `tiny-test`."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
        return cls(**{**PRESETS[name], **overrides})
