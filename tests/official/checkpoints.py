"""Official-layout checkpoints built by this project's code alone, identically on every machine.

A tiny OFA (the official vocabulary of the case's language, 64 channels, 2+2 layers, the smallest official image
trunk ResNet-50) with seeded weights is saved as a model directory and written with
`python -m ofa_core convert to-fairseq DIR --out X.pt --task <official train script>`; the goldens are OFA's own outputs
on that file, and `digest` fingerprints its tensors so that a changed builder cannot pass unnoticed.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch

from ofa_core.cli import main
from ofa_core.convert.safe_load import load_checkpoint
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.testing import randomize_

from .cases import Case, TokenWeights, Weights

SIZES = {
    "d_model": 64,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "resnet_type": "resnet50",
}
PRESETS = {"en": "ofa-tiny", "zh": "ofa-cn-base"}  # the official vocabulary sizes of each language
EOS = 2


def _kept(name: str) -> bool:
    """Embedding tables keep randomize_'s unit noise: a LayerNorm or the attention bias they feed sets their scale."""
    return ("embed" in name and "embed_images" not in name) or "rel_pos_table" in name


@torch.no_grad()
def tiny_official_model(language: str, weights: Weights, config: dict | None = None) -> OFAForConditionalGeneration:
    """The case's model: randomize_'s seeded unit noise, then matrices scaled as `Weights` says."""
    torch.manual_seed(weights.seed)
    model = OFAForConditionalGeneration(OFAConfig.from_preset(PRESETS[language], **SIZES, **(config or {})))
    randomize_(model, weights.seed, 1.0)
    for name, parameter in model.named_parameters():
        if parameter.dim() < 2:
            continue
        if name == "model.shared.weight":
            parameter.mul_(weights.embedding)
            parameter[EOS].mul_(weights.eos)
            if isinstance(weights, TokenWeights):
                parameter[model.config.code_start_id : model.config.bin_start_id].mul_(weights.codes)
                parameter[model.config.bin_start_id :].mul_(weights.bins)
        elif not _kept(name):
            gain = weights.attention if name.endswith(("q_proj.weight", "k_proj.weight")) else weights.gain
            parameter.mul_(gain / math.sqrt(parameter[0].numel()))
    return model.eval()


def build(case: Case, directory: Path) -> Path:
    """Write the case's model directory and its official-layout checkpoint under `directory`; return the .pt."""
    model_dir, checkpoint = directory / f"{case.recipe}-model", directory / f"{case.recipe}.pt"
    tiny_official_model(case.language, case.weights, case.config).save_pretrained(model_dir)
    code = main(["convert", "to-fairseq", str(model_dir), "--out", str(checkpoint), "--task", case.cfg])
    if code != 0:
        raise RuntimeError(f"convert to-fairseq {model_dir} --task {case.cfg} exited {code}")
    return checkpoint


def digest(checkpoint: Path) -> str:
    """SHA-256 of the checkpoint's model tensors: names, dtypes, shapes and bytes, in name order."""
    state = load_checkpoint(checkpoint)["model"]
    hasher = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        hasher.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        hasher.update(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()
