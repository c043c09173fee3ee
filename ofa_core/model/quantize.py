"""Fast mode: int8 dynamic quantization of what a decoding step reads.

On CPU a beam step is bound by reading the decoder's weights and the output projection;
int8 weights quarter that traffic.  Outputs differ slightly from fp32, so this is opt-in
and the benchmark reports its agreement with exact mode.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

from ofa_core.model.modeling import OFAForConditionalGeneration


def quantize_for_cpu(model: OFAForConditionalGeneration) -> OFAForConditionalGeneration:
    """A copy of `model` whose decoder layers and output projection run int8 dynamic-quantized linears.

    The encoder stays fp32: it runs once per image, and quantizing it costs accuracy for little time.
    The shared embedding stays fp32 for the inputs; only the projection gets an int8 copy.
    """
    fast = copy.deepcopy(model).eval()
    targets = {"model.decoder.layers": default_dynamic_qconfig, "lm_head": default_dynamic_qconfig}
    with warnings.catch_warnings():
        # torch.ao's eager quantization is deprecated upstream in favour of torchao, but is what the pinned torch ships.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return quantize_dynamic(fast, qconfig_spec=targets, dtype=torch.qint8, inplace=True)
