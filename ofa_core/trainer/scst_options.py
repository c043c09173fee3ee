"""The options of the `scst` loss, without importing torch.

Self-critical sequence training (OFA's caption stage 2) optimises a metric of the model's own beam-search
output instead of the likelihood of references. The loss itself (`ofa_core.trainer.scst`) depends on these
options, never the other way; the core plugin (`ofa_core.trainer.plugin`) registers both and imports the loss
only when a run builds it, so registering stays light.
"""

from __future__ import annotations

from typing import Any

import attrs

from ofa_core.model.search import OFFICIAL_SEARCH
from ofa_core.plugin import path_option


def _candidates(options: Any, _attribute: attrs.Attribute, value: int) -> None:
    beam = OFFICIAL_SEARCH[options.search].beam
    if not 2 <= value <= beam:
        raise ValueError(
            f"candidates must be between 2 (the baseline needs another candidate) and the beam of "
            f"search '{options.search}' ({beam}), got {value}"
        )


@attrs.frozen
class ScstOptions:
    """How candidates are searched and rewarded."""

    reward: str = attrs.field(default="cider_d", validator=attrs.validators.instance_of(str))
    """A registered metric with `rewards(candidates, references)`; the caption task's `cider_d` by default."""
    reward_options: dict = attrs.field(
        factory=dict,
        converter=dict,
        validator=attrs.validators.deep_mapping(
            attrs.validators.instance_of(str), attrs.validators.instance_of(object)
        ),
    )
    """The reward metric's options, e.g. {"tokenize": "zh"}."""
    references: str | None = path_option(default=None)
    """The training reference file (MUGE's IC_train.jsonl, the official caption TSV): the reward's corpus statistics
    are cached beside it, keyed by its SHA-256. Without it they are recomputed at every start."""
    search: str = attrs.field(default="caption", validator=attrs.validators.in_(sorted(OFFICIAL_SEARCH)))
    """The official search producing the candidates: 'caption' is stage 2's --scst-args (beam 5, max_len_b 16,
    no-repeat 3)."""
    candidates: int = attrs.field(default=5, validator=[attrs.validators.instance_of(int), _candidates])
    """Candidates per input (the best beams); each is rewarded against the mean reward of the others."""
