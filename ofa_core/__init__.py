"""ofa_core: the OFA unified vision-language Seq2Seq models on transformers, and the framework around them.

`import ofa_core` is light: it imports neither torch nor transformers. The model classes below load on
first use, and the OFA classes are registered with transformers' Auto* loaders as soon as those are
imported (`ofa_core.auto_registration`), so `AutoModelForSeq2SeqLM.from_pretrained(dir)` works on any
directory this project writes. `ofa_core.pipeline(task, model=DIR)` (docs/pipeline.md) loads on first use too.
A plugin may write `import ofa_core` and `@ofa_core.hookimpl`; `OFAError` is here too, and every other plugin
name is in `ofa_core.plugin`. The package map is in docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from ofa_core import auto_registration
from ofa_core._errors import OFAError
from ofa_core.auto_registration import register_auto_classes

_MODEL_CLASSES = (
    "OFAConfig",
    "OFAForConditionalGeneration",
    "OFAImageProcessor",
    "OFAModel",
    "OFAProcessor",
    "OFATokenizer",
)

_LAZY = {"pipeline": "ofa_core.inference.pipeline", "hookimpl": "ofa_core.plugin"}

__all__ = [*_MODEL_CLASSES, "OFAError", "hookimpl", "pipeline", "register_auto_classes"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name not in _MODEL_CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("ofa_core.model"), name)
    register_auto_classes()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


auto_registration.install()
