"""The OFA model family in transformers' shape: the bottom layer, importing no framework code.

configuration (and named presets), tokenization, image processing, processing, modeling (the
network and the official beam search), the official search settings, Auto registration, location
tokens for boxes and int8 quantization. Its errors are `OFAError` (`ofa_core._errors`), as everywhere above.

Classes are imported on first use, so `ofa_core.model.search` and `ofa_core.model.boxes` stay
free of torch and transformers.
"""

from __future__ import annotations

from ofa_core.model.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ofa_core.model.configuration": ("OFAConfig",),
        "ofa_core.model.tokenization": ("OFATokenizer",),
        "ofa_core.model.image_processing": ("OFAImageProcessor",),
        "ofa_core.model.processing": ("OFAProcessor",),
        "ofa_core.model.modeling": ("OFAModel", "OFAForConditionalGeneration", "OFAPreTrainedModel"),
        "ofa_core.model.auto": ("register_auto_classes",),
    },
    globals(),
)
