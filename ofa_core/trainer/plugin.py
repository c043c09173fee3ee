"""The core's own plugin: the default loss, registered through the same hook as everyone's components.

It is found through this project's `ofa_core` entry point (origin 'builtin'), not imported by the
registry, so it can be disabled and overridden like any plugin. Tasks live in plugins, not here.
Registering imports no torch: the loss function is imported when a run builds the loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ofa_core.plugin import DEFAULT_LOSS, LossOutput, LossSpec, hookimpl
from ofa_core.trainer.scst_options import ScstOptions


@attrs.frozen
class LabelSmoothingOptions:
    """Options of the default loss."""

    label_smoothing: float = attrs.field(
        default=0.1, converter=float, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)]
    )
    """ε; the official caption/VQA/RefCOCO fine-tunes use 0.1, SNLI-VE 0."""


def build_label_smoothed_ce(options: LabelSmoothingOptions):
    """`loss(model_output, batch) -> LossOutput` for the recipe's options.

    torch is imported here, not at registration."""
    from ofa_core.trainer.losses import label_smoothed_cross_entropy

    def loss(model_output: Any, batch: Mapping[str, Any]) -> LossOutput:
        return label_smoothed_cross_entropy(
            model_output.logits,
            batch["labels"],
            options.label_smoothing,
            batch.get("constraint_mask"),
            batch.get("loss_weights"),
        )

    return loss


LABEL_SMOOTHED_CE = LossSpec(
    options=LabelSmoothingOptions,
    build=build_label_smoothed_ce,
    description="label-smoothed cross entropy with fairseq's ε/(V−1) smoothing, padding ignored",
)


def build_scst(options: ScstOptions):
    """The SCST loss for these options (torch is imported here, not at registration)."""
    from ofa_core.trainer.scst import ScstLoss

    return ScstLoss(options)


SCST = LossSpec(
    options=ScstOptions,
    build=build_scst,
    description="self-critical sequence training: beam candidates rewarded by a registered metric "
    "(CIDEr-D) minus the other candidates' mean",
)


@hookimpl
def ofa_register_losses(register):
    register(DEFAULT_LOSS, LABEL_SMOOTHED_CE)
    register("scst", SCST)
