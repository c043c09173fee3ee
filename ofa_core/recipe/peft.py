"""The recipe's `peft` section: parameter-efficient tuning as official OFA has it (prefix / prompt tuning,
adapters, BitFit) and LoRA through HF `peft`. Pure data, so `ofa recipe validate` checks it without torch."""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

import attrs
from attrs import validators as v

DELTA_CONFIG_FILE = "adapter_config.json"
"""What marks a directory as a parameter-efficient delta (its method, settings and base model)."""

METHODS = ("prefix", "prompt", "adapter", "bitfit", "lora")

_PROMPT = (
    "encoder_prompt",
    "decoder_prompt",
    "encoder_prompt_length",
    "decoder_prompt_length",
    "encoder_prompt_projection",
    "decoder_prompt_projection",
    "encoder_prompt_dim",
    "decoder_prompt_dim",
)
OPTIONS_OF = {
    "prefix": _PROMPT,
    "prompt": _PROMPT,
    "adapter": ("adapter_dim",),
    "bitfit": (),
    "lora": ("r", "alpha", "dropout", "targets"),
}
"""The options each method reads; setting another method's option is an error, not silently ignored."""

_positive = v.optional([v.instance_of(int), v.gt(0)])

BITFIT_MODULES = ("self_attn_layer_norm", "cross_attn_layer_norm", "final_layer_norm", "layer_norm", "fc1", "fc2")
"""The modules whose biases BitFit trains: official train.py trains a bias whose fairseq name holds `layer_norm` or
`fc`, which (in this project's names) are these; NormFormer's extra norms (`attn_ln`, `ffn_layernorm`) and the
embedding norms (`layernorm_embedding`) are spelled without the underscore there and stay frozen."""


@attrs.frozen
class PeftSection:
    """Parameter-efficient tuning: only the parameters of the chosen method train, and each checkpoint holds
    only those plus a reference to the base model and its hash (docs/peft.md)."""

    method: Literal["prefix", "prompt", "adapter", "bitfit", "lora"] = attrs.field(
        validator=v.in_(METHODS),
        metadata={
            "help": "prefix: per-layer key/value prefixes (official --*-prompt-type prefix); prompt: learned input "
            "embeddings (--*-prompt-type prompt); adapter: a bottleneck after each layer (--adapter); bitfit: "
            "the layer-norm and feed-forward biases (--bitfit); lora: low-rank updates of the modules `targets` "
            "names (HF peft)"
        },
    )
    encoder_prompt: bool | None = attrs.field(
        default=None,
        validator=v.optional(v.instance_of(bool)),
        metadata={"help": "prefix/prompt: prompts in the encoder (--encoder-prompt); default true"},
    )
    decoder_prompt: bool | None = attrs.field(
        default=None,
        validator=v.optional(v.instance_of(bool)),
        metadata={"help": "prefix/prompt: prompts in the decoder (--decoder-prompt); default true"},
    )
    encoder_prompt_length: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={
            "help": "prefix/prompt: prompt tokens in the encoder (--encoder-prompt-length); default 100, as official"
        },
    )
    decoder_prompt_length: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={
            "help": "prefix/prompt: prompt tokens in the decoder (--decoder-prompt-length); default 100, as official"
        },
    )
    encoder_prompt_projection: bool | None = attrs.field(
        default=None,
        validator=v.optional(v.instance_of(bool)),
        metadata={
            "help": "prefix/prompt: produce the encoder prompts through a two-layer projection "
            "(--encoder-prompt-projection); default false"
        },
    )
    decoder_prompt_projection: bool | None = attrs.field(
        default=None,
        validator=v.optional(v.instance_of(bool)),
        metadata={"help": "prefix/prompt: the same for the decoder (--decoder-prompt-projection); default false"},
    )
    encoder_prompt_dim: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={
            "help": "prefix/prompt with projection: its hidden size (--encoder-prompt-dim); default 2 x d_model, as "
            "official"
        },
    )
    decoder_prompt_dim: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={
            "help": "prefix/prompt with projection: its hidden size in the decoder (--decoder-prompt-dim); default 2 "
            "x d_model"
        },
    )
    adapter_dim: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={"help": "adapter: bottleneck size (--adapter-dim); default 200, the official code's default"},
    )
    r: int | None = attrs.field(default=None, validator=_positive, metadata={"help": "lora: rank; default 8"})
    alpha: float | None = attrs.field(
        default=None,
        validator=v.optional(v.gt(0)),
        metadata={"help": "lora: scale numerator (the update is scaled by alpha / r); default 16"},
    )
    dropout: float | None = attrs.field(
        default=None,
        validator=v.optional([v.ge(0), v.lt(1)]),
        metadata={"help": "lora: dropout on the low-rank path's input; default 0.05"},
    )
    targets: list[str] | None = attrs.field(
        default=None,
        metadata={
            "help": "lora: the linear modules that get low-rank updates, as fnmatch patterns over module names, a "
            "pattern without a dot matching the last part (`q_proj`, `decoder.layers.*.fc1`); default "
            '["q_proj", "v_proj"] (every attention\'s query and value projections)'
        },
    )

    def __attrs_post_init__(self) -> None:
        allowed = OPTIONS_OF[self.method]
        for name in (n for options in OPTIONS_OF.values() for n in options):
            if getattr(self, name) is not None and name not in allowed:
                takes = [method for method, options in OPTIONS_OF.items() if name in options]
                raise ValueError(
                    f"{name} belongs to {' / '.join(map(repr, takes))} only, not to {self.method!r}; remove it"
                )
        if self.method in ("prefix", "prompt") and not (
            self.settings()["encoder_prompt"] or self.settings()["decoder_prompt"]
        ):
            raise ValueError("encoder_prompt and decoder_prompt are both false: prompts go on one side at least")
        if self.targets is not None and (not self.targets or not all(isinstance(t, str) and t for t in self.targets)):
            raise ValueError('targets must list one module pattern at least, e.g. ["q_proj", "v_proj"]')

    def settings(self) -> dict[str, Any]:
        """The method's options with their defaults filled in (what a delta records)."""
        defaults: dict[str, Any] = {
            "encoder_prompt": True,
            "decoder_prompt": True,
            "encoder_prompt_length": 100,
            "decoder_prompt_length": 100,
            "encoder_prompt_projection": False,
            "decoder_prompt_projection": False,
            "encoder_prompt_dim": None,
            "decoder_prompt_dim": None,
            "adapter_dim": 200,
            "r": 8,
            "alpha": 16.0,
            "dropout": 0.05,
            "targets": ["q_proj", "v_proj"],
        }
        chosen = {name: getattr(self, name) for name in OPTIONS_OF[self.method]}
        return {
            "method": self.method,
            **{name: defaults[name] if value is None else value for name, value in chosen.items()},
        }


def model_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The `OFAConfig` options that build the modules of a prefix, prompt or adapter delta (none for the others)."""
    method = settings["method"]
    if method == "adapter":
        return {"adapter": True, "adapter_dim": settings["adapter_dim"]}
    if method not in ("prefix", "prompt"):
        return {}
    found: dict[str, Any] = {}
    for side in ("encoder", "decoder"):
        if not settings[f"{side}_prompt"]:
            continue
        found.update(
            {
                f"{side}_prompt": True,
                f"{side}_prompt_type": method,
                f"{side}_prompt_length": settings[f"{side}_prompt_length"],
                f"{side}_prompt_projection": settings[f"{side}_prompt_projection"],
            }
        )
        if settings[f"{side}_prompt_dim"] is not None:
            found[f"{side}_prompt_dim"] = settings[f"{side}_prompt_dim"]
    return found


def target_regex(patterns: list[str]) -> str:
    """One regular expression (HF peft's `target_modules` as a string: a full match on the module name) for
    fnmatch `patterns`; a pattern matches the whole name or its last dotted parts."""
    return "|".join(f"(?:.*\\.)?(?:{fnmatch.translate(pattern)})" for pattern in patterns)


def trains(settings: dict[str, Any], name: str) -> bool:
    """Whether parameter `name` trains under the method of `settings` (the rule of official train.py and
    unify_transformer.py: prompts train their prompt encoders only, adapters their adapters, BitFit its biases)."""
    method = settings["method"]
    parts = name.split(".")
    if method in ("prefix", "prompt"):
        return any(f"{side}_prompt_encoder" in parts for side in ("encoder", "decoder") if settings[f"{side}_prompt"])
    if method == "adapter":
        return "adapter" in parts
    if method == "bitfit":
        return len(parts) >= 2 and parts[-1] == "bias" and parts[-2] in BITFIT_MODULES
    return any(part.startswith("lora_") for part in parts)
