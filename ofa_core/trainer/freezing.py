"""Which parameters train: LiT (frozen encoder), frozen word embedding, frozen ResNet, name patterns."""

from __future__ import annotations

import fnmatch

import attrs
from torch import nn

from ofa_core._errors import OFAError
from ofa_core.recipe.training import TrainingConfig



@attrs.frozen
class FreezeSummary:
    trainable: int
    frozen: int
    frozen_tensors: int

    def __str__(self) -> str:
        total = self.trainable + self.frozen
        return (f"parameters: {self.trainable:,} trainable, {self.frozen:,} frozen "
                f"({self.frozen_tensors} tensors; {100 * self.trainable / max(total, 1):.1f}% trainable)")


def apply_freezing(model: nn.Module, config: TrainingConfig) -> FreezeSummary:
    """Set `requires_grad` from the config; the shared embedding (tied to `lm_head`) follows `freeze_word_embed` only.

    Tied weights are one tensor listed once by `named_parameters`, under `model.shared.weight`.
    """
    for pattern in config.freeze_patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name, _ in model.named_parameters()):
            raise OFAError(f"training.freeze_patterns: {pattern!r} matches no parameter (names look like "
                f"'model.decoder.layers.0.fc1.weight')")
    trainable = frozen = tensors = 0
    for name, parameter in model.named_parameters():
        keep = not config.freezes(name)
        parameter.requires_grad_(keep)
        if keep:
            trainable += parameter.numel()
        else:
            frozen += parameter.numel()
            tensors += 1
    if not trainable:
        raise OFAError("training: every parameter is frozen; unfreeze something (freeze_* options)")
    return FreezeSummary(trainable, frozen, tensors)
