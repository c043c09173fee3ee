"""Exported folders shared by the export tests (exporting a tiny model takes a few seconds)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")

from ofa_core.export.onnx import export_onnx
from ofa_core.testing import tiny_model, tiny_processor


def conditioned_checkpoint(directory: Path, seed: int = 0, **overrides) -> Path:
    """A tiny model and processor whose ResNet keeps activations of order 1, as trained weights do.

    `tiny_model`'s wide random convolutions grow activations to ~1e16, where fp32 rounding alone differs by more
    than 1e-4 between any two kernels; scaling each convolution to He's variance keeps the comparison meaningful.
    """
    processor = tiny_processor()
    model = tiny_model(seed, vocab_size=len(processor.tokenizer), code_dict_size=16, **overrides)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.mul_(math.sqrt(2.0 / fan_in) / module.weight.std())
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def cn_model(tmp_path_factory) -> Path:
    return conditioned_checkpoint(tmp_path_factory.mktemp("export") / "model")


@pytest.fixture(scope="session")
def cn_exported(tmp_path_factory, cn_model) -> Path:
    out = tmp_path_factory.mktemp("export") / "onnx"
    export_onnx(cn_model, out, int8=True, overwrite=True)
    return out
