"""Check a written model directory against the tensors it was converted from.

Reloads the directory the way users will (`from_pretrained`), requires every tensor to
equal its source bit for bit and the embeddings to be tied, then runs one forward pass
on a fixed image + prompt with both the in-memory source model and the reloaded one and
requires identical logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ofa_core._errors import OFAError
from ofa_core.model.configuration import OFAConfig


class VerificationError(OFAError):
    """The written directory does not reproduce its source."""


@dataclass
class VerifyResult:
    tensors_checked: int
    logits_shape: tuple[int, ...]
    max_abs_diff: float
    greedy_ids: list[int]


def fixed_inputs(config: OFAConfig) -> dict[str, torch.Tensor]:
    """A deterministic prompt and image at the model's resolution (independent of the global RNG)."""
    generator = torch.Generator().manual_seed(0)
    text_ids = torch.randint(4, min(config.vocab_size, 1000), (1, 8), generator=generator)
    bos_eos = torch.tensor([[config.bos_token_id]]), torch.tensor([[config.eos_token_id]])
    size = config.patch_image_size
    return {
        "input_ids": torch.cat([bos_eos[0], text_ids, bos_eos[1]], dim=1),
        "patch_images": torch.rand((1, 3, size, size), generator=generator) * 2 - 1,
        "patch_masks": torch.tensor([True]),
        "decoder_input_ids": torch.cat([bos_eos[0], text_ids[:, :4]], dim=1),
    }


@torch.inference_mode()
def forward_logits(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**inputs, use_cache=False).logits


def verify_directory(directory: Path, source_model, state_dict: dict[str, torch.Tensor]) -> VerifyResult:
    """Reload `directory` and compare it with `state_dict` / `source_model`; raises `VerificationError`."""
    from ofa_core.model.modeling import OFAForConditionalGeneration

    reloaded = OFAForConditionalGeneration.from_pretrained(directory).eval()
    loaded = reloaded.state_dict()
    missing = sorted(set(state_dict) - set(loaded))
    differing = [
        key
        for key in state_dict
        if key in loaded
        and (loaded[key].dtype != state_dict[key].dtype or not torch.equal(loaded[key], state_dict[key]))
    ]
    if missing or differing:
        raise VerificationError(
            f"{directory}: reloaded weights differ from the source: missing {missing[:5]}, changed {differing[:5]}"
        )
    if reloaded.lm_head.weight.data_ptr() != reloaded.get_input_embeddings().weight.data_ptr():
        raise VerificationError(f"{directory}: reloaded output projection is not tied to the shared embedding")
    inputs = fixed_inputs(reloaded.config)
    expected = forward_logits(source_model, inputs)
    actual = forward_logits(reloaded, inputs)
    if not torch.isfinite(actual).all():
        raise VerificationError(f"{directory}: the reloaded model produces non-finite logits on the fixed input")
    diff = (expected - actual).abs().max().item()
    if diff != 0.0:
        raise VerificationError(f"{directory}: reloaded model's logits differ from the source model's by {diff:.3g}")
    return VerifyResult(len(state_dict), tuple(actual.shape), diff, actual.argmax(-1)[0].tolist())
