"""Which parameters train: LiT (frozen encoder), frozen word embedding, frozen ResNet, name patterns."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import attrs
from torch import nn

from ofa_core._errors import OFAError
from ofa_core.recipe.training import TrainingConfig


@attrs.frozen
class FreezeSummary:
    trainable: int
    frozen: int
    frozen_tensors: int
    method: str | None = None
    """The recipe's `peft.method`, when only its parameters train."""

    def __str__(self) -> str:
        total = self.trainable + self.frozen
        method = f"; peft {self.method}" if self.method else ""
        return (
            f"parameters: {self.trainable:,} trainable of {total:,} ({100 * self.trainable / max(total, 1):.2f}%"
            f"{method}), {self.frozen:,} frozen ({self.frozen_tensors} tensors)"
        )


def apply_freezing(
    model: nn.Module, config: TrainingConfig, only: Callable[[str], bool] | None = None, method: str | None = None
) -> FreezeSummary:
    """Set `requires_grad` from the config; the shared embedding (tied to `lm_head`) follows `freeze_word_embed` only.

    Tied weights are one tensor listed once by `named_parameters`, under `model.shared.weight`. With `only` (a
    parameter-efficient method's rule, named `method`), a parameter trains when `only` says so and the config does
    not freeze it.
    """
    for pattern in config.freeze_patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name, _ in model.named_parameters()):
            raise OFAError(
                f"training.freeze_patterns: {pattern!r} matches no parameter (names look like "
                f"'model.decoder.layers.0.fc1.weight')"
            )
    trainable = frozen = tensors = 0
    for name, parameter in model.named_parameters():
        keep = not config.freezes(name) and (only is None or only(name))
        parameter.requires_grad_(keep)
        if keep:
            trainable += parameter.numel()
        else:
            frozen += parameter.numel()
            tensors += 1
    if not trainable:
        where = f"peft.method {method!r} with the training.freeze_* options" if method else "training"
        raise OFAError(f"{where}: every parameter is frozen; unfreeze something (freeze_* options)")
    return FreezeSummary(trainable, frozen, tensors, method)
