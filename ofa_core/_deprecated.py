"""Old import paths kept until release 0.2.0: each old module re-exports its new home and warns once.

`ofa_core/specs.py`, `ofa_core/plugin/specs.py` and their siblings are one call each, `moved(globals(),
"ofa_core.plugin._specs")`: the old module keeps every name it had, and its warning names `ofa_core.plugin`, the one
import plugins should use (`ofa_core.testing` for the old `ofa_core.plugin.testing`).
Python caches modules, so the warning comes once per process, pointing at the line that imported the old path.
Delete the old modules (and this one) in release 0.2.0.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import Any

REMOVED_IN = "0.2.0"
"""The release that deletes the old import paths."""


def moved(namespace: dict[str, Any], new: str, instead: str = "ofa_core.plugin") -> None:
    """Make the module whose globals are `namespace` an alias of module `new`, and warn to import from `instead`
    (the public path: `ofa_core.plugin`, or `ofa_core.testing` for the test kit).

    Every public name of `new` is copied (so `from old import Name` and `from old import *` behave as
    before); any other attribute is looked up in `new` on access.
    """
    old = namespace["__name__"]
    target = importlib.import_module(new)
    namespace.update({name: value for name, value in vars(target).items() if not name.startswith("_")})
    if hasattr(target, "__all__"):
        namespace["__all__"] = list(target.__all__)

    def __getattr__(name: str) -> Any:
        try:
            return getattr(target, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {new})") from None

    namespace["__getattr__"] = __getattr__
    warnings.warn(
        f"{old} is deprecated; import from {instead}. The old path will be removed in release {REMOVED_IN}.",
        DeprecationWarning,
        stacklevel=_importer_level(),
    )


def _importer_level() -> int:
    """The `stacklevel` (counted from `moved`) of the first frame outside ofa_core: the line that imported the old path.

    Frames of ofa_core between them (the old module, the loader `auto_registration` wraps around `ofa_core.model`)
    are counted; the import machinery's are not, as `warnings` skips them itself.
    """
    package = str(Path(__file__).parent)
    level, frame = 1, sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not ("importlib" in filename and "_bootstrap" in filename):
            level += 1
            if not filename.startswith(package):
                return level
        frame = frame.f_back
    return level
