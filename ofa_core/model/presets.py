"""Named configurations of every official OFA size, and a tiny one for tests.

Sizes follow fairseq's `ofa_{tiny,medium,base,large,huge}_architecture`; the Chinese
models share the English architecture with the BERT-Chinese vocabulary.
"""

from __future__ import annotations

# Vocabulary sizes of the official dictionaries: text + <mask> + 8192 image codes + 1000 location bins.
EN_VOCAB_SIZE = 59457
ZH_VOCAB_SIZE = 30325


def _size(d_model: int, ffn: int, heads: int, enc: int, dec: int, resnet: str) -> dict:
    return {
        "d_model": d_model,
        "encoder_ffn_dim": ffn,
        "decoder_ffn_dim": ffn,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": heads,
        "encoder_layers": enc,
        "decoder_layers": dec,
        "resnet_type": resnet,
    }


_EN = {"language": "en", "vocab_size": EN_VOCAB_SIZE}
_ZH = {"language": "zh", "vocab_size": ZH_VOCAB_SIZE}

PRESETS: dict[str, dict] = {
    "ofa-tiny": {**_EN, **_size(256, 1024, 4, 4, 4, "resnet50")},
    "ofa-medium": {**_EN, **_size(512, 2048, 8, 4, 4, "resnet101")},
    "ofa-base": {**_EN, **_size(768, 3072, 12, 6, 6, "resnet101")},
    "ofa-large": {**_EN, **_size(1024, 4096, 16, 12, 12, "resnet152")},
    "ofa-huge": {**_EN, **_size(1280, 5120, 16, 24, 12, "resnet152")},
    "ofa-cn-base": {**_ZH, **_size(768, 3072, 12, 6, 6, "resnet101")},
    "ofa-cn-large": {**_ZH, **_size(1024, 4096, 16, 12, 12, "resnet152")},
    # The demo's from-scratch model (`ofa_core.demo`): learns the demo photos in minutes on 2 CPU cores. It has no
    # LayerNorm after the patch projection: from random weights, the projection soon learns a part common to all
    # photos, the LayerNorm scales the photo-specific rest down to little, and the ResNet stops learning shapes.
    "ofa-demo": {
        **_ZH,
        **_size(128, 512, 4, 3, 3, "resnet18"),
        "patch_image_size": 64,
        "patch_layernorm_embedding": False,
    },
    # Small enough to build and run in milliseconds; keeps the Chinese id layout.
    "tiny-test": {**_ZH, **_size(32, 64, 4, 2, 2, "resnet18"), "patch_image_size": 64},
}
