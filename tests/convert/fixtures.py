"""Official-layout fairseq checkpoints and transformers-port directories with random weights.

The key list is written out from the official module tree (spec §4.2) independently of
`ofa_core.convert`, and the index buffers are computed here from the spec's formulas, so
the converter is checked against the layout rather than against itself.
"""

from __future__ import annotations

import argparse
import collections
import enum
import json
import math
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

TINY = {
    "arch": "ofa_tiny",
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "decoder_ffn_embed_dim": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "resnet_type": "resnet18",
    "vocab": 300,
}
# OFA-CN-Base's shape (ResNet101 trunk, 6+6 layers, 12 heads, Chinese vocabulary) at a reduced width.
CN_BASE_NARROW = {
    "arch": "ofa_base",
    "encoder_embed_dim": 48,
    "encoder_ffn_embed_dim": 192,
    "decoder_ffn_embed_dim": 192,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 12,
    "decoder_attention_heads": 12,
    "resnet_type": "resnet101",
    "vocab": 30325,
}
BLOCKS = {"resnet18": (2, 2, 2), "resnet50": (3, 4, 6), "resnet101": (3, 4, 23), "resnet152": (3, 8, 36)}


def token_buckets(bucket_size: int, max_position: int = 1024) -> torch.Tensor:
    """Spec §1.7 text buckets, written from the prose (float64 logs; identical to the float32 table)."""
    mid = bucket_size // 2
    rel = torch.arange(max_position)[:, None] - torch.arange(max_position)[None, :]
    far = rel.abs().clamp(min=mid).double()
    log_bucket = torch.ceil(torch.log(far / mid) / math.log((max_position - 1) / mid) * (mid - 1)).long() + mid
    bucket = torch.where(rel.abs() <= mid, rel, rel.sign() * log_bucket)
    return bucket + bucket_size - 1


def image_buckets(bucket_size: int) -> torch.Tensor:
    n = bucket_size * bucket_size
    span = 2 * bucket_size - 1
    rows, cols = torch.arange(n) // bucket_size, torch.arange(n) % bucket_size
    table = torch.empty(n + 1, n + 1, dtype=torch.long)
    table[1:, 1:] = (rows[:, None] - rows[None, :] + bucket_size - 1) * span + (
        cols[:, None] - cols[None, :] + bucket_size - 1
    )
    total = span * span + 3
    table[0, :], table[:, 0], table[0, 0] = total - 3, total - 2, total - 1
    return table


def code_positions(code_image_size: int = 128, bucket_size: int = 42, tail: int = 769) -> torch.Tensor:
    window = code_image_size // 8
    ids = [1 + r * bucket_size + c for r in range(window) for c in range(window)]
    return torch.tensor([0] + ids + [1024] * tail)


def _bn(prefix: str, channels: int, out: dict, rand) -> None:
    out[f"{prefix}.weight"] = rand(channels)
    out[f"{prefix}.bias"] = rand(channels)
    out[f"{prefix}.running_mean"] = rand(channels)
    out[f"{prefix}.running_var"] = rand(channels).abs() + 0.5  # positive, as running variances are
    out[f"{prefix}.num_batches_tracked"] = torch.tensor(1234)


def fairseq_model_state(
    size: dict, seed: int = 0, scale_resids: bool = False, meta: bool = False, peft: dict | None = None
) -> OrderedDict:
    """Every key of an official OFA `model` state dict (NormFormer on), random values (shapes only if `meta`).

    `peft`: the official prompt/adapter flags of `unify_transformer.py` (`encoder_prompt`, `*_prompt_length`,
    `*_prompt_projection`, `*_prompt_dim`, `adapter`, `adapter_dim`), adding `PromptEncoder` and `Adapter_Layer`
    weights as that file builds them.
    """
    peft = peft or {}
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        if meta:
            return torch.empty(shape, device="meta")
        return torch.randn(shape, generator=generator) * 0.05

    d, h = size["encoder_embed_dim"], size["encoder_attention_heads"]
    f, v = size["encoder_ffn_embed_dim"], size["vocab"]
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    embedding = rand(v, d)

    def linear(prefix: str, n_out: int, n_in: int) -> None:
        out[f"{prefix}.weight"] = rand(n_out, n_in)
        out[f"{prefix}.bias"] = rand(n_out)

    def norm(prefix: str, n: int = d) -> None:
        out[f"{prefix}.weight"] = 1 + rand(n)
        out[f"{prefix}.bias"] = rand(n)

    def attention(prefix: str) -> None:
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(f"{prefix}.{proj}", d, d)
        out[f"{prefix}.c_attn"] = 1 + rand(h)

    for stack in ("encoder", "decoder"):
        out[f"{stack}.version"] = torch.Tensor([3])
        out[f"{stack}.embed_tokens.weight"] = embedding.clone()
        norm(f"{stack}.layernorm_embedding")
        out[f"{stack}.embed_positions.weight"] = rand(1026, d)
        out[f"{stack}.embed_image_positions.weight"] = rand(42 * 42 + 1, d)
        norm(f"{stack}.pos_ln")
        norm(f"{stack}.image_pos_ln")
        norm(f"{stack}.layer_norm")
        if stack == "encoder":
            out["encoder.type_embedding.weight"] = rand(2, d)
            norm("encoder.patch_layernorm_embedding")
            out["encoder.embed_images.conv1.weight"] = rand(64, 3, 7, 7)
            _bn("encoder.embed_images.bn1", 64, out, rand)
            channels = 64
            for stage, (planes, count) in enumerate(zip((64, 128, 256), BLOCKS[size["resnet_type"]]), start=1):
                for j in range(count):
                    p = f"encoder.embed_images.layer{stage}.{j}"
                    out[f"{p}.conv1.weight"] = rand(planes, channels, 1, 1)
                    _bn(f"{p}.bn1", planes, out, rand)
                    out[f"{p}.conv2.weight"] = rand(planes, planes, 3, 3)
                    _bn(f"{p}.bn2", planes, out, rand)
                    out[f"{p}.conv3.weight"] = rand(planes * 4, planes, 1, 1)
                    _bn(f"{p}.bn3", planes * 4, out, rand)
                    if j == 0:
                        out[f"{p}.downsample.0.weight"] = rand(planes * 4, channels, 1, 1)
                        _bn(f"{p}.downsample.1", planes * 4, out, rand)
                    channels = planes * 4
            linear("encoder.image_proj", d, 1024)
            linear("encoder.pos_q_linear", d, d)
            linear("encoder.pos_k_linear", d, d)
        else:
            norm("decoder.code_layernorm_embedding")
            for name in ("self_pos_q_linear", "self_pos_k_linear", "cross_pos_q_linear", "cross_pos_k_linear"):
                linear(f"decoder.{name}", d, d)
            out["decoder.output_projection.weight"] = embedding.clone()
        for n in range(size[f"{stack}_layers"]):
            p = f"{stack}.layers.{n}"
            attention(f"{p}.self_attn")
            norm(f"{p}.self_attn_layer_norm")
            norm(f"{p}.attn_ln" if stack == "encoder" else f"{p}.self_attn_ln")
            if stack == "decoder":
                attention(f"{p}.encoder_attn")
                norm(f"{p}.encoder_attn_layer_norm")
                norm(f"{p}.cross_attn_ln")
            linear(f"{p}.fc1", f, d)
            norm(f"{p}.ffn_layernorm", f)
            linear(f"{p}.fc2", d, f)
            norm(f"{p}.final_layer_norm")
            if scale_resids:
                out[f"{p}.w_resid"] = 1 + rand(d)
            out[f"{stack}.token_rel_pos_table_list.{n}.weight"] = rand(511, h)
            out[f"{stack}.image_rel_pos_table_list.{n}.weight"] = rand(83 * 83 + 3, h)
            if peft.get("adapter"):
                linear(f"{p}.adapter.down_proj", peft["adapter_dim"], d)
                linear(f"{p}.adapter.up_proj", d, peft["adapter_dim"])
        if peft.get(f"{stack}_prompt"):
            length, width = peft[f"{stack}_prompt_length"], size[f"{stack}_layers"] * 2 * d
            prompt = f"{stack}.{stack}_prompt_encoder"
            if peft.get(f"{stack}_prompt_projection"):
                out[f"{prompt}.embedding.weight"] = rand(length, d)
                linear(f"{prompt}.trans.0", peft[f"{stack}_prompt_dim"], d)
                linear(f"{prompt}.trans.2", width, peft[f"{stack}_prompt_dim"])
            else:
                out[f"{prompt}.embedding.weight"] = rand(length, width)
        out[f"{stack}.token_rp_bucket"] = token_buckets(256)
        out[f"{stack}.image_rp_bucket"] = image_buckets(42)
    out["decoder.image_position_idx"] = code_positions()
    return out


def model_namespace(size: dict, **overrides) -> argparse.Namespace:
    """cfg['model'] as fairseq writes it: every CLI argument, task ones included."""
    fields = {key: value for key, value in size.items() if key != "vocab"}
    return argparse.Namespace(
        **{
            "_name": fields["arch"],
            **fields,
            "decoder_embed_dim": fields["encoder_embed_dim"],
            "encoder_normalize_before": True,
            "decoder_normalize_before": True,
            "share_all_embeddings": True,
            "share_decoder_input_output_embed": True,
            "no_scale_embedding": True,
            "layernorm_embedding": True,
            "activation_fn": "gelu",
            "dropout": 0.1,
            "attention_dropout": 0.0,
            "activation_dropout": 0.0,
            "max_source_positions": 1024,
            "max_target_positions": 1024,
            "token_bucket_size": 256,
            "image_bucket_size": 42,
            "attn_scale_factor": 2,
            "code_image_size": 128,
            "add_type_embedding": True,
            "patch_layernorm_embedding": True,
            "code_layernorm_embedding": True,
            "entangle_position_embedding": False,
            "disable_entangle": True,
            "scale_attn": True,
            "scale_fc": True,
            "scale_heads": True,
            "scale_resids": False,
            "resnet_drop_path_rate": 0.0,
            "encoder_drop_path_rate": 0.1,
            "decoder_drop_path_rate": 0.1,
            "sync_bn": False,
            "freeze_resnet": False,
            "orig_patch_image_size": 256,
            "interpolate_position": False,
            "bpe": "bert",
            "patch_image_size": 64,
            "max_src_length": 80,
            "max_tgt_length": 20,
            "seed": 7,
            "lr": [1e-5],
            "ddp_backend": _fake_fairseq_enum()("c10d"),
            **overrides,
        }
    )


def task_settings(vocab: int, **overrides) -> dict:
    small = vocab < 1000  # tiny vocabularies use a few codes and bins so the layout stays fairseq's
    return {
        "_name": "caption",
        "bpe": "bert",
        "bpe_dir": "utils/BERT_CN_dict",
        "selected_cols": "0,4,2",
        "patch_image_size": 64,
        "max_src_length": 80,
        "max_tgt_length": 20,
        "prompt_type": "none",
        "imagenet_default_mean_and_std": False,
        "num_bins": 10 if small else 1000,
        "code_dict_size": 8 if small else 8192,
        **overrides,
    }


_FAKE_MODULES = (
    "fairseq",
    "fairseq.dataclass",
    "fairseq.dataclass.constants",
    "omegaconf",
    "omegaconf.dictconfig",
    "omegaconf.nodes",
)


def _fake_modules() -> dict[str, types.ModuleType]:
    """Modules named like fairseq's/OmegaConf's so pickle records their classes under those names."""
    modules = {name: types.ModuleType(name) for name in _FAKE_MODULES}

    class DDP_BACKEND_CHOICES(enum.Enum):
        c10d = "c10d"
        no_c10d = "no_c10d"

    class AnyNode:
        def __init__(self, value) -> None:
            self._val = value

        def __getstate__(self) -> dict:
            return {"_val": self._val, "_metadata": None, "_parent": None}

    class DictConfig:
        """Pickles like OmegaConf's: value nodes inside `_content`, flags in a defaultdict."""

        def __init__(self, content: dict) -> None:
            self._content = {
                key: DictConfig(value) if isinstance(value, dict) else AnyNode(value) for key, value in content.items()
            }

        def __getstate__(self) -> dict:
            return {
                "_content": self._content,
                "_metadata": None,
                "_parent": None,
                "_flags": collections.defaultdict(int, readonly=0),
            }

    for cls, module in (
        (DDP_BACKEND_CHOICES, "fairseq.dataclass.constants"),
        (DictConfig, "omegaconf.dictconfig"),
        (AnyNode, "omegaconf.nodes"),
    ):
        cls.__module__ = module
        cls.__qualname__ = cls.__name__
        setattr(modules[module], cls.__name__, cls)
    return modules


_MODULES = _fake_modules()


def _fake_fairseq_enum():
    return _MODULES["fairseq.dataclass.constants"].DDP_BACKEND_CHOICES


def save_fairseq_checkpoint(
    path: Path,
    size: dict,
    *,
    seed: int = 0,
    layout: str = "cfg",
    ema: bool = False,
    model_overrides: dict | None = None,
    task_overrides: dict | None = None,
    state: OrderedDict | None = None,
    peft: dict | None = None,
) -> OrderedDict:
    """Write an official-layout checkpoint (fairseq meters, numpy scalars, OmegaConf bits included).

    `peft`: official prompt/adapter flags, set in cfg.model and given weights (see `fairseq_model_state`).
    """
    state = fairseq_model_state(size, seed, peft=peft) if state is None else state
    namespace = model_namespace(size, **{**(peft or {}), **(model_overrides or {})})
    task = task_settings(size["vocab"], **(task_overrides or {}))
    meters = [
        (0, "loss", "AverageMeter", {"val": np.float64(2.5), "sum": np.float64(25.0), "count": 10, "round": 3}),
        (10, "wall", "StopwatchMeter", {"sum": 12.0, "n": np.int64(3), "round": 0}),
    ]
    extra = {
        "metrics": OrderedDict(train=meters, default=[]),
        "previous_training_time": np.float64(1234.5),
        "train_iterator": {"epoch": 3, "iterations_in_epoch": 0, "shuffle": True},
        "val_loss": np.float64(1.75),
        "best": np.float32(1.5),
        "hydra": _MODULES["omegaconf.dictconfig"].DictConfig({"run": {"dir": "outputs"}}),
    }
    if ema:
        extra["ema"] = OrderedDict(
            (
                key,
                value + 1
                if value.is_floating_point()
                and key.endswith("weight")
                and "embed_tokens" not in key
                and "output_projection" not in key
                else value,
            )
            for key, value in state.items()
        )
    checkpoint = {
        "args": namespace if layout == "args" else None,
        "model": state,
        "optimizer_history": [
            {
                "criterion_name": "AdjustLabelSmoothedCrossEntropyCriterion",
                "optimizer_name": "FairseqAdam",
                "lr_scheduler_state": {"best": np.float64(1.5)},
                "num_updates": 4000,
            }
        ],
        "task_state": {},
        "extra_state": extra,
        "criterion": None,
    }
    if layout == "cfg":
        checkpoint["cfg"] = {
            "_name": None,
            "common": {"fp16": True, "seed": 7},
            "model": namespace,
            "task": task,
            "criterion": {"_name": "adjust_label_smoothed_cross_entropy", "label_smoothing": 0.1},
            "ema": {"store_ema": ema},
        }
    else:
        for key, value in task.items():
            setattr(namespace, key, value)
    saved = {name: sys.modules.get(name) for name in _FAKE_MODULES}
    sys.modules.update(_MODULES)
    try:
        torch.save(checkpoint, path)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return state


def write_bert_vocab(path: Path, text_tokens: int) -> Path:
    """A BERT-style vocab.txt with `text_tokens` lines ([PAD], [UNK], ... then CJK characters)."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "?", "，"]
    chars = [chr(0x4E00 + i) for i in range(text_tokens - len(specials))]
    path.write_text("\n".join(specials + chars) + "\n", encoding="utf-8")
    return path


def _port_name(key: str) -> str:
    renames = {
        "attn_ln": "self_attn_mid_layer_norm",
        "self_attn_ln": "self_attn_mid_layer_norm",
        "ffn_layernorm": "ffn_layer_norm",
        "encoder_attn": "cross_attn",
        "encoder_attn_layer_norm": "cross_attn_layer_norm",
        "cross_attn_ln": "cross_attn_mid_layer_norm",
    }
    parts = key.split(".")
    if len(parts) > 3 and parts[1] == "layers":
        parts[3] = renames.get(parts[3], parts[3])
    return ".".join(parts)


def write_port_dir(
    directory: Path, size: dict, *, seed: int = 0, prefix: str = "", safetensors: bool = False, tokenizer: bool = False
) -> OrderedDict:
    """A transformers-port directory: port key names, 1025-long image_position_idx, port config + tokenizer."""
    directory.mkdir(parents=True)
    fairseq = fairseq_model_state(size, seed)
    state = OrderedDict(
        (prefix + _port_name(key), value) for key, value in fairseq.items() if not key.endswith(".version")
    )
    state[prefix + "decoder.image_position_idx"] = code_positions(tail=768)
    config = {
        "model_type": "ofa",
        "architectures": ["OFAModel"],
        "vocab_size": size["vocab"],
        "d_model": size["encoder_embed_dim"],
        "encoder_layers": size["encoder_layers"],
        "decoder_layers": size["decoder_layers"],
        "encoder_attention_heads": size["encoder_attention_heads"],
        "decoder_attention_heads": size["decoder_attention_heads"],
        "encoder_ffn_dim": size["encoder_ffn_embed_dim"],
        "decoder_ffn_dim": size["decoder_ffn_embed_dim"],
        "resnet_type": size["resnet_type"],
        "normformer": True,
        "encoder_normalize_before": True,
        "decoder_normalize_before": True,
        "token_bucket_size": 256,
        "image_bucket_size": 42,
        "attn_scale_factor": 2.0,
        "code_image_size": 128,
        "scale_embedding": False,
        "dropout": 0.1,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 0,
        "forced_eos_token_id": 2,
        "use_cache": False,
        "transformers_version": "4.20.0",
    }
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if tokenizer and size["vocab"] == 30325:
        write_bert_vocab(directory / "bert.txt", 21128)
        bert = (directory / "bert.txt").read_text(encoding="utf-8").split("\n")[:-1]
        (directory / "bert.txt").unlink()
        (directory / "vocab.txt").write_text(
            "\n".join(["<s>", "<pad>", "</s>", "<unk>", *bert, "<mask>"]) + "\n", encoding="utf-8"
        )
    elif tokenizer:
        write_bart_vocab(directory, 50260)
    if safetensors:
        from safetensors.torch import save_file

        # safetensors refuses shared storage: store the three embedding copies separately, as a resave would.
        save_file({key: value.clone().contiguous() for key, value in state.items()}, directory / "model.safetensors")
    else:
        torch.save(state, directory / "pytorch_model.bin")
    return state


def write_bart_vocab(directory: Path, text_tokens: int) -> None:
    """BART-style vocab.json (fairseq ids) + merges.txt: the byte alphabet, then two-character merges."""
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    merges = [(alphabet[i % 256], alphabet[i // 256]) for i in range(text_tokens - len(alphabet))]
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *alphabet, *(a + b for a, b in merges), "<mask>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
