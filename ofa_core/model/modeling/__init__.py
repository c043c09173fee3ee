"""The OFA model family as transformers models.

Classes load on first use, so the official search (`beam_search`) can be imported without the network's code,
as generation over exported graphs does.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OFAEncoderOutput": "ofa_core.model.modeling.outputs",
    "OFAForConditionalGeneration": "ofa_core.model.modeling.model",
    "OFAModel": "ofa_core.model.modeling.model",
    "OFAPreTrainedModel": "ofa_core.model.modeling.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
