"""Import an official fairseq OFA checkpoint (`.pt`) as an `ofa_core` config + state dict.

The model settings come from the checkpoint itself: `cfg['model']` (an argparse Namespace)
in current files, the top-level `args` Namespace in older ones, and preprocessing
settings from `cfg['task']`. A setting absent from the file takes the value fairseq's
`ofa_*` architecture functions would have given it, never `OFAConfig`'s default.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ofa_core.convert.keys import (
    FAIRSEQ_EMBEDDINGS,
    FAIRSEQ_POSITION_TAIL,
    VERSION_BUFFERS,
    expected_buffers,
    fairseq_to_port,
    port_to_ofa,
)
from ofa_core.convert.mapping import ConversionError, Converted, assemble
from ofa_core.convert.safe_load import CheckpointError, load_checkpoint, plain
from ofa_core.convert.task import checkpoint_task
from ofa_core.model.configuration import EN_VOCAB_SIZE, RESNET_LAYERS, ZH_VOCAB_SIZE, OFAConfig

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# `ofa_large_architecture` defaults (every ofa_* size starts from these).
ARCH_DEFAULTS: dict[str, Any] = {
    "encoder_embed_dim": 1024,
    "encoder_layers": 12,
    "encoder_attention_heads": 16,
    "decoder_layers": 12,
    "decoder_attention_heads": 16,
    "encoder_normalize_before": True,
    "decoder_normalize_before": True,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "dropout": 0.0,
    "max_source_positions": 1024,
    "max_target_positions": 1024,
    "share_all_embeddings": True,
    "no_scale_embedding": True,
    "layernorm_embedding": True,
    "activation_fn": "gelu",
    "resnet_drop_path_rate": 0.0,
    "encoder_drop_path_rate": 0.0,
    "decoder_drop_path_rate": 0.0,
    "resnet_type": "resnet152",
    "token_bucket_size": 256,
    "image_bucket_size": 42,
    "add_type_embedding": True,
    "attn_scale_factor": 2,
    "code_image_size": 128,
    "patch_layernorm_embedding": True,
    "code_layernorm_embedding": True,
    "entangle_position_embedding": False,
    "disable_entangle": False,
    "sync_bn": False,
    "scale_attn": False,
    "scale_fc": False,
    "scale_heads": False,
    "scale_resids": False,
    "orig_patch_image_size": 256,
    "interpolate_position": False,
    "freeze_resnet": False,
    # Parameter-efficient tuning (`base_architecture`; the prompt dims default to 2 * encoder_embed_dim, below).
    "encoder_prompt": False,
    "encoder_prompt_type": "prefix",
    "encoder_prompt_length": 100,
    "encoder_prompt_projection": False,
    "decoder_prompt": False,
    "decoder_prompt_type": "prefix",
    "decoder_prompt_length": 100,
    "decoder_prompt_projection": False,
    "adapter": False,
    "adapter_dim": 200,
}
# Size overrides of the smaller/larger `ofa_*` architectures (D, layers, heads, trunk).
ARCH_SIZES: dict[str, dict[str, Any]] = {
    "ofa_tiny": {
        "encoder_embed_dim": 256,
        "encoder_layers": 4,
        "decoder_layers": 4,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "resnet_type": "resnet50",
    },
    "ofa_medium": {
        "encoder_embed_dim": 512,
        "encoder_layers": 4,
        "decoder_layers": 4,
        "encoder_attention_heads": 8,
        "decoder_attention_heads": 8,
        "resnet_type": "resnet101",
    },
    "ofa_base": {
        "encoder_embed_dim": 768,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "encoder_attention_heads": 12,
        "decoder_attention_heads": 12,
        "resnet_type": "resnet101",
    },
    "ofa_huge": {
        "encoder_embed_dim": 1280,
        "encoder_layers": 24,
        "decoder_layers": 12,
        "encoder_attention_heads": 16,
        "decoder_attention_heads": 16,
        "resnet_type": "resnet152",
    },
}
# Settings under which the official model differs from what ofa_core implements.
_UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "sync_bn": (False, "SyncBatchNorm with eps 1e-3 (--sync-bn)"),
    "encoder_normalize_before": (True, "post-LN encoder layers"),
    "decoder_normalize_before": (True, "post-LN decoder layers"),
    "share_all_embeddings": (True, "separate encoder/decoder embeddings"),
}


class FairseqArgs:
    """The checkpoint's model arguments with fairseq's architecture defaults behind them."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.defaults = {**ARCH_DEFAULTS, **ARCH_SIZES.get(str(args.get("arch", "")), {})}

    def get(self, name: str) -> Any:
        value = self.args.get(name)
        if value is None:
            value = self.defaults.get(name)
        if name == "encoder_ffn_embed_dim" and value is None:
            value = 4 * self.get("encoder_embed_dim")
        if name in ("decoder_embed_dim",) and value is None:
            value = self.get("encoder_embed_dim")
        if name == "decoder_ffn_embed_dim" and value is None:
            value = self.get("encoder_ffn_embed_dim")
        if name in ("encoder_prompt_dim", "decoder_prompt_dim") and value is None:
            value = 2 * self.get("encoder_embed_dim")
        return value


def checkpoint_settings(checkpoint: dict, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model args, task settings) as plain dicts from either checkpoint layout."""
    cfg = checkpoint.get("cfg")
    cfg = plain(cfg) if cfg is not None else None
    args = plain(checkpoint.get("args"))
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        task = cfg.get("task") if isinstance(cfg.get("task"), dict) else {}
        return cfg["model"], task
    if isinstance(args, dict):
        return args, args
    raise CheckpointError(
        f"{path}: no model settings: neither cfg['model'] nor args is present; this is not a "
        "fairseq training checkpoint (pass the .pt file fairseq wrote)"
    )


def _whole_cfg(checkpoint: dict) -> dict[str, Any] | None:
    """Every group of the checkpoint's cfg as plain values, kept so `convert to-fairseq` writes it back."""
    cfg = plain(checkpoint.get("cfg")) if checkpoint.get("cfg") is not None else None
    return cfg if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict) else None


def detect_language(args: dict[str, Any], task: dict[str, Any], vocab_size: int) -> str | None:
    """'zh' for the BERT-Chinese dictionary, 'en' for GPT-2 BPE, from the bpe setting or the vocabulary size."""
    bpe = task.get("bpe") or args.get("bpe")
    if bpe == "bert":
        return "zh"
    if bpe == "gpt2":
        return "en"
    return {ZH_VOCAB_SIZE: "zh", EN_VOCAB_SIZE: "en"}.get(vocab_size)


def peft_settings(a: FairseqArgs) -> dict[str, Any]:
    """The prompt and adapter settings of the modules the checkpoint has; an unused module's settings (which
    fairseq stores all the same) stay at OFAConfig's defaults, so they do not tell two equal models apart."""
    settings: dict[str, Any] = {}
    for side in ("encoder", "decoder"):
        if a.get(f"{side}_prompt"):
            settings.update(
                {
                    f"{side}_prompt{field}": convert(a.get(f"{side}_prompt{field}"))
                    for field, convert in (
                        ("", bool),
                        ("_type", str),
                        ("_length", int),
                        ("_projection", bool),
                        ("_dim", int),
                    )
                }
            )
    if a.get("adapter"):
        settings.update(adapter=True, adapter_dim=int(a.get("adapter_dim")))
    return settings


def _check_supported(a: FairseqArgs, args: dict[str, Any], path: Path) -> None:
    """Refuse the architecture options ofa_core does not implement, naming the setting."""
    for name, (supported, what) in _UNSUPPORTED.items():
        value = a.get(name)
        if bool(supported if value is None else value) != supported:
            raise ConversionError(f"{path}: cfg.model.{name}={args.get(name)!r}: {what} is not supported by ofa_core")
    resnet_type = a.get("resnet_type")
    if resnet_type not in RESNET_LAYERS:
        raise ConversionError(
            f"{path}: cfg.model.resnet_type={resnet_type!r}: only the ResNet image embedders "
            f"({', '.join(sorted(RESNET_LAYERS))}) are supported"
        )
    if a.get("decoder_embed_dim") != a.get("encoder_embed_dim"):
        raise ConversionError(
            f"{path}: encoder_embed_dim {a.get('encoder_embed_dim')} != decoder_embed_dim "
            f"{a.get('decoder_embed_dim')}: OFA shares one embedding, so they must match"
        )


def _as_is(value: Any) -> Any:
    return value


SAME_SETTINGS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("d_model", "encoder_embed_dim", _as_is),
    ("encoder_layers", "encoder_layers", _as_is),
    ("decoder_layers", "decoder_layers", _as_is),
    ("encoder_attention_heads", "encoder_attention_heads", _as_is),
    ("decoder_attention_heads", "decoder_attention_heads", _as_is),
    ("resnet_type", "resnet_type", _as_is),
    ("encoder_ffn_dim", "encoder_ffn_embed_dim", _as_is),
    ("decoder_ffn_dim", "decoder_ffn_embed_dim", _as_is),
    ("activation_function", "activation_fn", _as_is),
    ("max_position_embeddings", "max_source_positions", _as_is),
    ("resnet_drop_path_rate", "resnet_drop_path_rate", float),
    ("token_bucket_size", "token_bucket_size", _as_is),
    ("image_bucket_size", "image_bucket_size", _as_is),
    ("attn_scale_factor", "attn_scale_factor", float),
    ("code_image_size", "code_image_size", _as_is),
    ("entangle_position_embedding", "entangle_position_embedding", bool),
    ("disable_entangle", "disable_entangle", bool),
    ("interpolate_position", "interpolate_position", bool),
    ("orig_patch_image_size", "orig_patch_image_size", _as_is),
    ("scale_attn", "scale_attn", bool),
    ("scale_fc", "scale_fc", bool),
    ("scale_heads", "scale_heads", bool),
    ("scale_resids", "scale_resids", bool),
    ("layernorm_embedding", "layernorm_embedding", bool),
    ("patch_layernorm_embedding", "patch_layernorm_embedding", bool),
    ("code_layernorm_embedding", "code_layernorm_embedding", bool),
    ("add_type_embedding", "add_type_embedding", bool),
    ("dropout", "dropout", float),
    ("attention_dropout", "attention_dropout", float),
    ("activation_dropout", "activation_dropout", float),
    ("encoder_drop_path_rate", "encoder_drop_path_rate", float),
    ("decoder_drop_path_rate", "decoder_drop_path_rate", float),
)
"""(OFAConfig field, fairseq model argument, how the argument's value reads as the field's) for the settings both
sides hold once, in fairseq's order: `derive_config` reads them, `to_fairseq.model_args` writes the config's values
back as they are."""


def _check_prompt_types(a: FairseqArgs, path: Path) -> None:
    """Official OFA builds only 'prefix' prompts; another recorded type cannot come from a working checkpoint."""
    for side in ("encoder", "decoder"):
        kind = a.get(f"{side}_prompt_type")
        if a.get(f"{side}_prompt") and kind != "prefix":
            raise ConversionError(
                f"{path}: cfg.model.{side}_prompt_type={kind!r}: official OFA builds and runs only "
                "'prefix' prompts (its --*-prompt-type choices), so no such checkpoint can be "
                f"converted; retrain with --{side}-prompt-type prefix"
            )


def derive_config(args: dict[str, Any], task: dict[str, Any], vocab_size: int, language: str, path: Path) -> OFAConfig:
    """Every OFAConfig field from the checkpoint's own settings."""
    a = FairseqArgs(args)
    _check_supported(a, args, path)
    _check_prompt_types(a, path)

    def setting(name: str, default: Any) -> Any:
        """Task settings live in cfg['task']; older files only have them in the model args."""
        value = task.get(name, args.get(name))
        return default if value is None else value

    imagenet_stats = bool(setting("imagenet_default_mean_and_std", False))
    return OFAConfig(
        vocab_size=vocab_size,
        **{field: read(a.get(arg)) for field, arg, read in SAME_SETTINGS},
        scale_embedding=not a.get("no_scale_embedding"),
        **peft_settings(a),
        language=language,
        code_dict_size=int(setting("code_dict_size", 8192)),
        num_bins=int(setting("num_bins", 1000)),
        patch_image_size=int(setting("patch_image_size", 480)),
        image_mean=IMAGENET_MEAN if imagenet_stats else [0.5, 0.5, 0.5],
        image_std=IMAGENET_STD if imagenet_stats else [0.5, 0.5, 0.5],
    )


def _model_weights(checkpoint: dict, path: Path, ema: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    notes = []
    extra = checkpoint.get("extra_state") if isinstance(checkpoint.get("extra_state"), dict) else {}
    has_ema = isinstance(extra.get("ema"), dict) and bool(extra["ema"])
    if ema:
        if not has_ema:
            raise ConversionError(
                f"{path}: --ema given but the checkpoint holds no EMA weights (extra_state['ema']); run without --ema"
            )
        notes.append("weights: EMA copy from extra_state['ema']")
        weights = extra["ema"]
    else:
        weights = checkpoint.get("model")
        if has_ema:
            notes.append(
                "the checkpoint also holds EMA weights; the official evaluation of VQA (--ema-eval) uses "
                "them: convert again with --ema for those"
            )
    if not isinstance(weights, dict) or not weights:
        raise CheckpointError(f"{path}: no 'model' state dict in the checkpoint; pass an OFA training checkpoint")
    bad = [key for key, value in weights.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {', '.join(map(str, bad[:5]))}")
    return dict(weights), notes


def read_fairseq(path: str | Path, *, ema: bool = False, language: str | None = None) -> Converted:
    """Load, check and map an official checkpoint; raises `OFAError` subclasses on any problem."""
    path = Path(path)
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: holds a {type(checkpoint).__name__}, not a fairseq checkpoint dict")
    args, task = checkpoint_settings(checkpoint, path)
    weights, notes = _model_weights(checkpoint, path, ema)
    embedding = next((weights[key] for key in FAIRSEQ_EMBEDDINGS if key in weights), None)
    if embedding is None:
        raise ConversionError(f"{path}: missing keys: {', '.join(FAIRSEQ_EMBEDDINGS)}; not an OFA checkpoint")
    detected = detect_language(args, task, embedding.shape[0])
    if language and detected and language != detected:
        notes.append(f"--lang {language} overrides the checkpoint's own {detected} vocabulary setting")
    language = language or detected
    if language is None:
        raise ConversionError(
            f"{path}: cannot tell the vocabulary (bpe setting absent, {embedding.shape[0]} rows); "
            "pass --lang zh or --lang en"
        )
    config = derive_config(args, task, embedding.shape[0], language, path)
    state, sources, map_notes = assemble(
        weights,
        config,
        origin=str(path),
        embedding_keys=FAIRSEQ_EMBEDDINGS,
        rename=lambda key: port_to_ofa(fairseq_to_port(key)),
        recomputed=expected_buffers(
            config.token_bucket_size, config.image_bucket_size, config.code_image_size, FAIRSEQ_POSITION_TAIL
        ),
        ignored=VERSION_BUFFERS,
        fill_batch_counters=bool(FairseqArgs(args).get("freeze_resnet")),
    )
    dtypes = sorted(
        {str(tensor.dtype).replace("torch.", "") for tensor in weights.values() if tensor.is_floating_point()}
    )
    if dtypes != ["float32"]:
        notes.append(f"source floats are {', '.join(dtypes)}; stored as float32 (exact)")
    notes += map_notes
    origin = {
        "fairseq_model_args": args,
        "fairseq_task": task,
        "fairseq_cfg": _whole_cfg(checkpoint),
        "fairseq_dtype": dtypes[0] if len(dtypes) == 1 else None,
    }
    return Converted(
        config, state, sources, dtypes, notes, origin=origin, task=checkpoint_task(args, task, config, path, ema=ema)
    )
