"""Import the published transformers ports of OFA (OFA-Sys/ofa-* and YeungNLP/ofa-cn-*).

Both ports share one layout: an `OFAModel` state dict without the `model.` prefix, the
three embedding copies stored under fairseq's names, the fairseq index buffers (with a
1025-long `image_position_idx`), and a config with a single `normformer` switch. The
tokenizers differ: the English port ships BART-style `vocab.json` + `merges.txt`, the
Chinese one a BERT `vocab.txt` with OFA's specials around the BERT vocabulary.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging

from ofa_core._errors import OFAError
from ofa_core.convert.keys import FAIRSEQ_EMBEDDINGS, PORT_POSITION_TAIL, VERSION_BUFFERS, expected_buffers, port_to_ofa
from ofa_core.convert.mapping import ConversionError, Converted, assemble
from ofa_core.convert.safe_load import CheckpointError, load_checkpoint
from ofa_core.model.configuration import EN_VOCAB_SIZE, RESNET_LAYERS, ZH_VOCAB_SIZE, OFAConfig

logger = logging.get_logger(__name__)

# Resolution the ports' own examples preprocess with; the port config does not record one.
PORT_PATCH_IMAGE_SIZE = 256
# Defaults of the ports' `OFAConfig.__init__`, for keys a port config.json leaves out.
PORT_DEFAULTS: dict[str, Any] = {
    "vocab_size": EN_VOCAB_SIZE,
    "max_position_embeddings": 1024,
    "encoder_layers": 4,
    "encoder_ffn_dim": 2048,
    "encoder_attention_heads": 8,
    "decoder_layers": 4,
    "decoder_ffn_dim": 2048,
    "decoder_attention_heads": 8,
    "activation_function": "gelu",
    "d_model": 512,
    "dropout": 0.1,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "init_std": 0.02,
    "scale_embedding": False,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "encoder_normalize_before": True,
    "decoder_normalize_before": True,
    "normformer": True,
    "encoder_drop_path_rate": 0.0,
    "decoder_drop_path_rate": 0.0,
    "layernorm_embedding": True,
    "patch_layernorm_embedding": True,
    "resnet_type": "resnet101",
    "resnet_drop_path_rate": 0.0,
    "token_bucket_size": 256,
    "image_bucket_size": 42,
    "add_type_embedding": True,
    "share_decoder_input_output_embed": True,
    "attn_scale_factor": 2.0,
    "code_layernorm_embedding": True,
    "code_image_size": 128,
    "entangle_position_embedding": False,
    "use_cache": True,
}
PORT_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Files a hub download needs: config, weights, tokenizer.
HUB_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.bin"]


class PortError(OFAError):
    """A port directory or hub id cannot be read."""


def _read_config(directory: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def is_port_checkpoint(path: str | Path) -> bool:
    """True for a local directory in a published port layout (OFA config without ofa_core's own fields)."""
    directory = Path(path)
    config = _read_config(directory) if directory.is_dir() else None
    if config is None or config.get("model_type") != "ofa":
        return False
    return "normformer" in config or not {"scale_attn", "language"} & set(config)


def resolve_source(source: str) -> Path:
    """A local directory as is; otherwise a hub id, downloaded with `huggingface_hub.snapshot_download`."""
    local = Path(source)
    if local.is_dir():
        return local
    if local.exists() or source.count("/") != 1 or source.startswith((".", "/")):
        raise PortError(f"{source}: not a directory; pass a port directory or a hub id such as YeungNLP/ofa-cn-base")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=source, allow_patterns=HUB_PATTERNS))
    except Exception as error:  # the hub client raises many unrelated types (network, auth, HTTP)
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise PortError(
            f"{source}: download from the Hugging Face hub failed ({type(error).__name__}: {detail}); "
            "check the id and your network, or download the repository and pass its directory"
        ) from error


def _load_weight_file(file: Path) -> dict[str, torch.Tensor]:
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(file)
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(f"{file}: not a readable safetensors file ({error}); download it again") from error
    weights = load_checkpoint(file)
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{file}: not a state dict of tensors")
    return dict(weights)


def read_port_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a port directory (single file or sharded with an index), without the `model.` prefix."""
    for name in _WEIGHT_FILES:
        if (directory / name).is_file():
            weights = _load_weight_file(directory / name)
            break
    else:
        index = next((directory / name for name in _INDEX_FILES if (directory / name).is_file()), None)
        if index is None:
            raise PortError(
                f"{directory}: no weights ({', '.join(_WEIGHT_FILES + _INDEX_FILES)}); pass a complete port directory"
            )
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError) as error:
            raise PortError(f"{index}: malformed index ({error}); download it again") from error
        weights = {}
        for shard in shards:
            weights.update(_load_weight_file(directory / shard))
    if weights and all(key.startswith("model.") for key in weights):
        weights = {key[len("model.") :]: value for key, value in weights.items()}
    return weights


def _language(config: dict[str, Any], directory: Path) -> str:
    by_size = {ZH_VOCAB_SIZE: "zh", EN_VOCAB_SIZE: "en"}.get(config.get("vocab_size"))
    if by_size:
        return by_size
    if (directory / "vocab.txt").is_file():
        return "zh"
    if (directory / "vocab.json").is_file():
        return "en"
    raise PortError(
        f"{directory}: cannot tell the vocabulary (vocab_size {config.get('vocab_size')}, no vocab.txt "
        "or vocab.json); this is not an OFA port directory"
    )


def port_config(raw: dict[str, Any], directory: Path) -> tuple[OFAConfig, list[str]]:
    """OFAConfig from a port config.json; the ports keep one `normformer` switch and always scale heads."""
    c = {**PORT_DEFAULTS, **{key: value for key, value in raw.items() if value is not None}}
    origin = directory / "config.json"
    if not (c["encoder_normalize_before"] and c["decoder_normalize_before"]):
        raise ConversionError(f"{origin}: post-LN layers (encoder/decoder_normalize_before false) are not supported")
    if c["resnet_type"] not in RESNET_LAYERS:
        raise ConversionError(f"{origin}: resnet_type {c['resnet_type']!r} is not one of {sorted(RESNET_LAYERS)}")
    if not c["share_decoder_input_output_embed"]:
        raise ConversionError(f"{origin}: share_decoder_input_output_embed false is not supported")
    notes = [
        f"patch_image_size set to {PORT_PATCH_IMAGE_SIZE} (the ports' documented resolution; their config "
        "does not record one): pass the fine-tuning resolution to the processor if it differs"
    ]
    config = OFAConfig(
        vocab_size=c["vocab_size"],
        d_model=c["d_model"],
        encoder_layers=c["encoder_layers"],
        decoder_layers=c["decoder_layers"],
        encoder_attention_heads=c["encoder_attention_heads"],
        decoder_attention_heads=c["decoder_attention_heads"],
        encoder_ffn_dim=c["encoder_ffn_dim"],
        decoder_ffn_dim=c["decoder_ffn_dim"],
        activation_function=c["activation_function"],
        max_position_embeddings=c["max_position_embeddings"],
        resnet_type=c["resnet_type"],
        resnet_drop_path_rate=float(c["resnet_drop_path_rate"]),
        token_bucket_size=c["token_bucket_size"],
        image_bucket_size=c["image_bucket_size"],
        attn_scale_factor=float(c["attn_scale_factor"]),
        code_image_size=c["code_image_size"],
        entangle_position_embedding=bool(c["entangle_position_embedding"]),
        # The ports add target positions in the decoder only together with entangle_position_embedding.
        disable_entangle=not c["entangle_position_embedding"],
        scale_attn=bool(c["normformer"]),
        scale_fc=bool(c["normformer"]),
        scale_heads=True,
        scale_resids=False,
        layernorm_embedding=bool(c["layernorm_embedding"]),
        patch_layernorm_embedding=bool(c["patch_layernorm_embedding"]),
        code_layernorm_embedding=bool(c["code_layernorm_embedding"]),
        add_type_embedding=bool(c["add_type_embedding"]),
        scale_embedding=bool(c["scale_embedding"]),
        dropout=float(c["dropout"]),
        attention_dropout=float(c["attention_dropout"]),
        activation_dropout=float(c["activation_dropout"]),
        encoder_drop_path_rate=float(c["encoder_drop_path_rate"]),
        decoder_drop_path_rate=float(c["decoder_drop_path_rate"]),
        init_std=float(c["init_std"]),
        language=_language(c, directory),
        patch_image_size=PORT_PATCH_IMAGE_SIZE,
        pad_token_id=c["pad_token_id"],
        bos_token_id=c["bos_token_id"],
        eos_token_id=c["eos_token_id"],
        decoder_start_token_id=c.get("decoder_start_token_id", c["bos_token_id"]),
        use_cache=True,
    )
    return config, notes


def read_port(path: str | Path) -> Converted:
    """Load, check and map a local port directory; raises `OFAError` subclasses on any problem."""
    directory = Path(path)
    raw = _read_config(directory)
    if raw is None or raw.get("model_type") != "ofa":
        raise PortError(f"{directory}: no config.json with model_type 'ofa'; pass an OFA port directory")
    config, notes = port_config(raw, directory)
    weights = read_port_weights(directory)
    state, sources, map_notes = assemble(
        weights,
        config,
        origin=str(directory),
        embedding_keys=(*FAIRSEQ_EMBEDDINGS, "shared.weight"),
        rename=port_to_ofa,
        recomputed=expected_buffers(
            config.token_bucket_size, config.image_bucket_size, config.code_image_size, PORT_POSITION_TAIL
        ),
        ignored=VERSION_BUFFERS,
    )
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in weights.values() if t.is_floating_point()})
    if dtypes != ["float32"]:
        notes.append(f"source floats are {', '.join(dtypes)}; stored as float32 (exact)")
    return Converted(config, state, sources, dtypes, notes + map_notes, origin={"port_config": raw})


def read_port_if_any(path: str) -> tuple[OFAConfig, dict[str, torch.Tensor]] | None:
    """(config, ofa_core state dict) of a port directory, else None: the model's checkpoint reader for ports."""
    if not is_port_checkpoint(path):
        return None
    converted = read_port(path)
    logger.warning_once(
        f"{path} is a transformers port of OFA; converted it on the fly. "
        f"Run `python -m ofa_core convert port {path} --out DIR` to convert it once."
    )
    return converted.config, converted.state_dict


def register_port_reader() -> None:
    """Let `OFAForConditionalGeneration.from_pretrained` load port directories directly; idempotent."""
    from ofa_core.model.modeling import OFAPreTrainedModel

    if read_port_if_any not in OFAPreTrainedModel.checkpoint_readers:
        OFAPreTrainedModel.checkpoint_readers.append(read_port_if_any)


def port_tokenizer(directory: Path, config: OFAConfig):
    """The OFA tokenizer rebuilt from a port's own tokenizer files, or None when they are absent."""
    from ofa_core.model.tokenization import OFATokenizer

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if config.language == "zh" and (directory / "vocab.txt").is_file():
            lines = (directory / "vocab.txt").read_text(encoding="utf-8").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if tuple(lines[:4]) == PORT_SPECIALS and lines[-1] == "<mask>":
                lines = lines[4:-1]  # back to the plain BERT vocabulary the OFA tokenizer is built from
            (scratch / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            tokenizer = OFATokenizer.from_bert_vocab(
                scratch / "vocab.txt", code_dict_size=config.code_dict_size, num_bins=config.num_bins
            )
        elif config.language == "en" and (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
            _gpt2_files_from_bart(directory, scratch)
            tokenizer = OFATokenizer.from_gpt2_bpe(
                scratch / "encoder.json",
                directory / "merges.txt",
                scratch / "dict.txt",
                code_dict_size=config.code_dict_size,
                num_bins=config.num_bins,
            )
        else:
            return None
    if len(tokenizer) != config.vocab_size:
        raise PortError(
            f"{directory}: its tokenizer files give {len(tokenizer)} tokens but the model has "
            f"{config.vocab_size} embedding rows; pass --vocab / --bpe-dir with the right vocabulary"
        )
    return tokenizer


def _gpt2_files_from_bart(directory: Path, scratch: Path) -> None:
    """encoder.json + dict.txt equivalent to a BART `vocab.json` whose ids are already fairseq ids."""
    vocab: dict[str, int] = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    ids = [index for _, index in by_id]
    tokens = [token for token, _ in by_id]
    if ids != list(range(len(ids))) or tuple(tokens[:4]) != PORT_SPECIALS or tokens[-1] != "<mask>":
        raise PortError(
            f"{directory / 'vocab.json'}: not OFA's English vocabulary (expected ids 0..N with "
            "<s> <pad> </s> <unk> first and <mask> last)"
        )
    text = tokens[4:-1]
    # Each text token gets a stand-in "GPT-2 id" equal to its position; dict.txt lists them in fairseq order.
    (scratch / "encoder.json").write_text(json.dumps({token: i for i, token in enumerate(text)}), encoding="utf-8")
    (scratch / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(len(text))), encoding="utf-8")
