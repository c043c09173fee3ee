"""Old import paths kept for one release: each old module re-exports its new module and warns once.

`ofa_core/specs.py` and its siblings are one call each, `moved(globals(), "ofa_core.plugin.specs",
via="ofa_core.plugin")`. Python caches modules, so the warning comes once per process, pointing
at the line that imported the old path. Delete the old modules (and this one) in the next release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def moved(namespace: dict[str, Any], new: str, *, via: str | None = None) -> None:
    """Make the module whose globals are `namespace` an alias of module `new`, and warn that it moved.

    Every public name of `new` is copied (so `from old import Name` and `from old import *` behave as
    before); any other attribute, private ones included, is looked up in `new` on access. `via` is the
    import plugin authors should prefer (`ofa_core.plugin`) when `new` is one of its submodules.
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
    where = f"{via} (or {new})" if via else new
    # stacklevel 3: past this function and the old module, to the importer (import machinery frames are skipped).
    warnings.warn(f"{old} is deprecated; import from {where}. The old path will be removed in the next release.",
                  DeprecationWarning, stacklevel=3)
