"""The OFA model family as transformers models.

Classes load on first use, so the official search (`beam_search`) can be imported without the network's code,
as generation over exported graphs does.
"""

from __future__ import annotations

from ofa_core.model.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ofa_core.model.modeling.outputs": ("OFAEncoderOutput",),
        "ofa_core.model.modeling.model": ("OFAForConditionalGeneration", "OFAModel", "OFAPreTrainedModel"),
    },
    globals(),
)
