"""State-dict key names: fairseq, the published transformers ports, and `ofa_core`.

The three layouts differ only in a few NormFormer/cross-attention layer names, the
`model.` prefix, how the one shared embedding is spelled, and which index buffers
are stored. Everything here is explicit so that any key outside these rules is
reported instead of silently dropped.
"""

from __future__ import annotations

import re

import torch

from ofa_core.model.modeling.positions import image_bucket_table, image_position_ids, token_bucket_table

# fairseq layer sub-module name -> ofa_core / transformers-port name, per stack.
LAYER_RENAMES: dict[str, dict[str, str]] = {
    "encoder": {"attn_ln": "self_attn_mid_layer_norm", "ffn_layernorm": "ffn_layer_norm"},
    "decoder": {
        "self_attn_ln": "self_attn_mid_layer_norm",
        "encoder_attn": "cross_attn",
        "encoder_attn_layer_norm": "cross_attn_layer_norm",
        "cross_attn_ln": "cross_attn_mid_layer_norm",
        "ffn_layernorm": "ffn_layer_norm",
    },
}
_LAYER_KEY = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.([^.]+)(.*)$")

# The shared token embedding: three stored copies in fairseq and the ports, four tied names in ofa_core.
FAIRSEQ_EMBEDDINGS = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight")
OFA_SHARED = "model.shared.weight"
OFA_EMBEDDINGS = (
    OFA_SHARED,
    "model.encoder.embed_tokens.weight",
    "model.decoder.embed_tokens.weight",
    "lm_head.weight",
)

# Index buffers the ports and fairseq store but ofa_core recomputes.
BUCKET_BUFFERS = (
    "encoder.token_rp_bucket",
    "encoder.image_rp_bucket",
    "decoder.token_rp_bucket",
    "decoder.image_rp_bucket",
)
IMAGE_POSITION_IDX = "decoder.image_position_idx"
VERSION_BUFFERS = ("encoder.version", "decoder.version")
# fairseq's text bucket table is always built for 1024 positions, whatever max_source_positions says.
TOKEN_BUCKET_POSITIONS = 1024


def _rename_layer(key: str, table: dict[str, dict[str, str]]) -> str:
    match = _LAYER_KEY.match(key)
    if not match:
        return key
    stack, index, module, rest = match.groups()
    return f"{stack}.layers.{index}.{table[stack].get(module, module)}{rest}"


_INVERSE_RENAMES = {stack: {new: old for old, new in names.items()} for stack, names in LAYER_RENAMES.items()}


def fairseq_to_port(key: str) -> str:
    """fairseq name -> transformers-port name (no `model.` prefix)."""
    return _rename_layer(key, LAYER_RENAMES)


def port_to_fairseq(key: str) -> str:
    """transformers-port name -> fairseq name."""
    return _rename_layer(key, _INVERSE_RENAMES)


def port_to_ofa(key: str) -> str:
    """Port names are ofa_core's inner-model names; ofa_core nests them under `model.`."""
    return f"model.{key}"


def ofa_to_port(key: str) -> str:
    """ofa_core name (not an embedding alias) -> transformers-port name."""
    if not key.startswith("model."):
        raise KeyError(key)
    return key[len("model.") :]


def token_bucket_buffer(bucket_size: int) -> torch.Tensor:
    """fairseq's `token_rp_bucket`: int64 [1024, 1024]."""
    return token_bucket_table(bucket_size, TOKEN_BUCKET_POSITIONS)


def image_bucket_buffer(bucket_size: int) -> torch.Tensor:
    """fairseq's `image_rp_bucket`: int64 [B*B+1, B*B+1]."""
    return image_bucket_table(bucket_size)


def image_position_idx_buffer(code_image_size: int, bucket_size: int, tail: int) -> torch.Tensor:
    """The decoder's image-code position ids: id 0 (BOS), the code window row-major, then `tail` fillers.

    fairseq pads with 769 fillers of 1024 (length 1026 for 128-px codes); the ports with 768.
    """
    window = code_image_size // 8
    ids = image_position_ids(window, window, bucket_size)
    return torch.cat([torch.zeros(1, dtype=torch.long), ids.long(), torch.full((tail,), 1024, dtype=torch.long)])


FAIRSEQ_POSITION_TAIL = 769
PORT_POSITION_TAIL = 768


def expected_buffers(
    token_bucket_size: int, image_bucket_size: int, code_image_size: int, tail: int
) -> dict[str, torch.Tensor]:
    """Every recomputed index buffer a checkpoint of this geometry stores, by fairseq/port name."""
    token = token_bucket_buffer(token_bucket_size)
    image = image_bucket_buffer(image_bucket_size)
    buffers = {name: token if name.endswith("token_rp_bucket") else image for name in BUCKET_BUFFERS}
    buffers[IMAGE_POSITION_IDX] = image_position_idx_buffer(code_image_size, image_bucket_size, tail)
    return buffers
