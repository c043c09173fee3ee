"""`import ofa_core` registers the OFA classes with transformers' Auto loaders, without importing torch itself.

It also offers the OFA tasks to `transformers.pipeline(...)` as `ofa-caption`, `ofa-vqa` and
`ofa-classification` (`ofa_core.inference.pipeline`; docs/pipeline.md says why not transformers' own names).

Registering needs torch and transformers, which `import ofa_core.plugin` and the light CLI verbs must not
pay for. So `import ofa_core` registers at once only when transformers' Auto loaders are already imported;
otherwise a finder on `sys.meta_path` waits until they are. Registering imports transformers, the model,
the port reader and the pipeline adapters; it happens at the first moment none of those is half-initialised (so no
import
cycle can bite), checked each time one of them finishes importing. Then the finder removes itself.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings
from types import ModuleType

_WATCHED = ("transformers.", "ofa_core.model", "ofa_core.convert", "ofa_core.inference.pipeline")
_AUTO_LOADERS = ("transformers.models.auto.configuration_auto", "transformers.models.auto.modeling_auto")
_registered = False


def register_auto_classes() -> None:
    """Make `Auto*.from_pretrained(dir)` build OFA objects, `from_pretrained` read the published
    transformers ports of OFA, and `transformers.pipeline("ofa-caption"|"ofa-vqa"|"ofa-classification", ...)`
    run OFA tasks; safe to call any number of times."""
    global _registered
    from ofa_core.convert.port import register_port_reader
    from ofa_core.inference.pipeline import register_transformers_pipelines
    from ofa_core.model.auto import register_auto_classes as register_model_classes

    register_model_classes()
    register_port_reader()
    register_transformers_pipelines()
    _registered = True
    _uninstall()


def _watched(name: str) -> bool:
    return name == "transformers" or name.startswith(_WATCHED)


def _initialising(module: ModuleType | None, skip: ModuleType | None) -> bool:
    spec = getattr(module, "__spec__", None)
    return module is not skip and bool(getattr(spec, "_initializing", False))


def _register_if_ready(just_loaded: ModuleType | None = None) -> None:
    if _registered or not any(name in sys.modules for name in _AUTO_LOADERS):
        return
    for name, module in list(sys.modules.items()):
        if _watched(name) and _initialising(module, just_loaded):
            return  # a later import completion retries
    try:
        register_auto_classes()
    except Exception as error:  # an import hook must never break the import that triggered it
        warnings.warn(
            f"ofa_core could not register its classes with transformers' Auto loaders: {error}; "
            f"call ofa_core.register_auto_classes() to see why",
            RuntimeWarning,
            stacklevel=2,
        )
        _uninstall()


class _Watcher(importlib.abc.MetaPathFinder):
    """Wraps the loader of each module registration imports, to retry registration when it finishes."""

    def find_spec(self, name, path, target=None):
        if not _watched(name):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _register_if_ready(module)

        loader.exec_module = exec_module
        return spec


_WATCHER = _Watcher()


def _uninstall() -> None:
    if _WATCHER in sys.meta_path:
        sys.meta_path.remove(_WATCHER)


def suspend() -> None:
    """Stop waiting to register: a process that runs exported graphs only (`--backend onnxruntime`) then imports no
    model class. `register_auto_classes()` still registers on demand."""
    _uninstall()


def install() -> None:
    """Register now if transformers' Auto loaders are loaded, else as soon as they are."""
    if _registered:
        return
    if _WATCHER not in sys.meta_path:
        sys.meta_path.insert(0, _WATCHER)
    _register_if_ready()
