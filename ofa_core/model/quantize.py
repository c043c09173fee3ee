"""int8 mode: dynamic quantization of the linear layers, per output channel.

On CPU a beam step is bound by reading the decoder's weights and the output projection, and at batch 8 the
encoder's transformer layers take much of the rest; int8 weights quarter that traffic. Per-channel scales keep
each output row's own range, so a few large rows do not flatten the others. Outputs can differ from fp32, so
this is opt-in (`--precision int8`), and benchmarks/bench_precision.py measures its agreement with exact mode on
the trained demo model.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

from ofa_core.model.modeling import OFAForConditionalGeneration


def quantize_for_cpu(
    model: OFAForConditionalGeneration, encoder: bool = False, keep_last_layer: bool = False, per_channel: bool = True
) -> OFAForConditionalGeneration:
    """A copy of `model` with int8 dynamic-quantized linears in the decoder layers and output projection.

    `encoder`: the encoder's transformer layers too (the `int8` precision mode does: at batch 8 they are much of the
    time). `keep_last_layer`: leave the last decoder layer in fp32. `per_channel`: one scale per output row rather than
    per matrix. benchmarks/bench_precision.py measures each variant's agreement with fp32.
    The ResNet, the embeddings and the position projections stay fp32; the shared embedding keeps fp32 for the
    inputs and only the output projection gets an int8 copy.
    """
    fast = copy.deepcopy(model).eval()
    layers = [f"model.decoder.layers.{index}" for index in range(len(fast.model.decoder.layers))]
    if keep_last_layer:
        layers = layers[:-1]
    targets = [*layers, "lm_head", *(["model.encoder.layers"] if encoder else [])]
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        # torch.ao's eager quantization is deprecated upstream in favour of torchao, but is what the pinned torch ships.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return quantize_dynamic(fast, qconfig_spec=dict.fromkeys(targets, qconfig), dtype=torch.qint8, inplace=True)
