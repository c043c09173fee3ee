"""Output containers of the OFA encoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.modeling_outputs import BaseModelOutput


@dataclass
class OFAEncoderOutput(BaseModelOutput):
    """Encoder states plus what the decoder needs besides them.

    padding_mask: bool `[B, T]`, True where a position is padding (text pads and the
        patches of samples whose `patch_masks` is False).
    position_embeddings: `[B, T, D]`, the normalised position embeddings the decoder's
        cross-attention bias is computed from.
    """

    padding_mask: torch.Tensor | None = None
    position_embeddings: torch.Tensor | None = None
