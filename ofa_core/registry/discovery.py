"""Plugin discovery: built-ins, installed entry points, local plugin folders, recipe-named modules.

Each plugin is imported and registered in isolation: one that fails is recorded (and warned about
in one line) while the others keep working. The core holds no list of tasks; even the built-in
`ofa_tasks` is found through this project's own entry points.

Environment:
  OFA_LOAD_PLUGINS=a,b     only these installed/local plugins ('' = built-ins only)
  OFA_DISABLE_PLUGINS=a,b  never load these (built-ins included)
  OFA_TRACE_PLUGINS=1      print every hook call to stderr
  OFA_PLUGINS_DIR=d1:d2    local plugin folders (default ./plugins if it exists)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from ofa_core._errors import OFAError
from ofa_core.plugin import _hooks as hookspecs
from ofa_core.registry.components import PluginFailure, PluginInfo, Registry, build_registry

DISTRIBUTION = "ofa-framework"
"""Entry points of this distribution are the built-ins: loaded first and never filtered by OFA_LOAD_PLUGINS."""
LOCAL_PACKAGE = "ofa_local_plugins"
"""Local plugin files are imported as `ofa_local_plugins.<stem>`: a stable name that pickles."""
HOOK_NAMES = frozenset(name for name in dir(hookspecs) if name.startswith("ofa_"))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginLoader:
    """A plugin manager plus what loaded and what failed; `registry()` builds the components."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        self.allowed = _names(self.environ.get("OFA_LOAD_PLUGINS"))
        self.disabled = _names(self.environ.get("OFA_DISABLE_PLUGINS")) or set()
        if self.environ.get("OFA_TRACE_PLUGINS", "") not in ("", "0"):
            self.manager.trace.root.setwriter(lambda message: sys.stderr.write(f"trace: {message}"))
            self.manager.enable_tracing()

    def wanted(self, name: str, origin: str) -> bool:
        if name in self.disabled:
            return False
        return origin == "builtin" or self.allowed is None or name in self.allowed

    def add(self, plugin: Any, name: str, origin: str, version: str | None = None) -> bool:
        """Register `plugin` (a module, class or instance); False, with a recorded failure, if it is unusable."""
        if self.manager.has_plugin(name):
            return False
        try:
            _check_hook_names(self.manager, plugin)
            self.manager.register(plugin, name=name)
        except Exception as exc:
            self.fail(name, origin, exc)
            return False
        self.infos.append(PluginInfo(name, version, origin))
        return True

    def fail(self, name: str, origin: str, exc: BaseException) -> None:
        failure = PluginFailure.from_exception(name, origin, exc)
        self.failures.append(failure)
        warn(f"plugin '{name}' ({origin}) failed to load: {failure.error} (disable with OFA_DISABLE_PLUGINS={name})")

    def load_entry_points(self) -> None:
        """Built-ins (this distribution's entry points) first, then every other installed plugin."""
        points = {}
        # Every distribution, not entry_points(): a stale `*.egg-info` in the working directory
        # would otherwise hide the installed metadata of the same name.
        for distribution in importlib.metadata.distributions():
            for point in distribution.entry_points.select(group=hookspecs.PROJECT):
                points.setdefault(point.name, point)  # a distribution seen twice on sys.path counts once
        builtin = [p for p in points.values() if _distribution(p) == DISTRIBUTION]
        others = sorted((p for p in points.values() if _distribution(p) != DISTRIBUTION), key=lambda p: p.name)
        for point, origin in [(p, "builtin") for p in builtin] + [(p, "entrypoint") for p in others]:
            if not self.wanted(point.name, origin):
                continue
            try:
                module = point.load()
            except Exception as exc:
                self.fail(point.name, origin, exc)
                continue
            self.add(module, point.name, origin, point.dist.version if point.dist else None)

    def load_directories(self, directories: Iterable[str | Path] = ()) -> None:
        """Each `*.py` file and package directory in the folders becomes a plugin named by its stem."""
        folders = [Path(d) for d in directories]
        folders += [Path(d) for d in self.environ.get("OFA_PLUGINS_DIR", "").split(os.pathsep) if d]
        if not folders and Path("plugins").is_dir():
            folders = [Path("plugins")]
        for folder in folders:
            if not folder.is_dir():
                raise OFAError(f"{folder}: plugins folder not found; fix --plugins-dir or OFA_PLUGINS_DIR")
            for path in sorted(folder.iterdir()):
                if path.name.startswith((".", "_")) or not (path.suffix == ".py" or (path / "__init__.py").is_file()):
                    continue
                name = path.stem
                if self.manager.has_plugin(name) or not self.wanted(name, "plugins-dir"):
                    continue
                try:
                    module = import_path(path)
                except Exception as exc:
                    self.fail(name, "plugins-dir", exc)
                    continue
                self.add(module, name, "plugins-dir")

    def load_recipe_modules(self, references: Sequence[str], base_dir: Path) -> None:
        """Modules a recipe lists in `plugins.load`: dotted names, or paths relative to the recipe.

        The recipe asked for them explicitly, so a failure here is an error rather than a warning.
        """
        for index, reference in enumerate(references):
            path = base_dir / reference
            looks_like_path = "/" in reference or reference.endswith(".py") or path.exists()
            name = Path(reference).stem if looks_like_path else reference
            if self.manager.has_plugin(name):
                continue
            try:
                module = import_path(path) if looks_like_path else importlib.import_module(reference)
            except FileNotFoundError:
                raise OFAError(
                    f"plugins.load[{index}]: {path} does not exist; give a path relative to the recipe or a module name"
                ) from None
            except Exception as exc:
                raise OFAError(
                    f"plugins.load[{index}]: cannot import '{reference}': {type(exc).__name__}: {exc}"
                ) from exc
            before = len(self.failures)
            self.add(module, name, "recipe")
            if len(self.failures) > before:
                raise OFAError(f"plugins.load[{index}]: plugin '{reference}' is unusable: {self.failures[-1].error}")

    def registry(self, *, strict: bool = False) -> Registry:
        return build_registry(self.manager, self.infos, self.failures, strict=strict, warn=warn)

    def add_commands(self, subparsers: Any) -> None:
        """Let each plugin add CLI verbs; one that raises is recorded and skipped."""
        hook = "ofa_register_commands"
        implementers: dict[str, Any] = {}
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            implementers.setdefault(impl.plugin_name, impl.plugin)
        for name, plugin in implementers.items():
            others = [other for other in implementers.values() if other is not plugin]
            try:
                # Through pluggy, one plugin at a time: traced, and one that raises spares the rest.
                self.manager.subset_hook_caller(hook, remove_plugins=others)(subparsers=subparsers)
            except Exception as exc:
                self.fail(name, "commands", exc)


def load_plugins(plugins_dirs: Iterable[str | Path] = (), *, environ: Mapping[str, str] | None = None) -> PluginLoader:
    """Discover built-in, installed and local plugins, in that order (recipe modules come later)."""
    plugins = PluginLoader(environ)
    plugins.load_entry_points()
    plugins.load_directories(plugins_dirs)
    return plugins


def import_path(path: Path) -> ModuleType:
    """Import a plugin file or package directory as `ofa_local_plugins.<stem>`."""
    path = path.resolve()
    if not path.exists():
        raise FileNotFoundError(path)
    if LOCAL_PACKAGE not in sys.modules:
        package = ModuleType(LOCAL_PACKAGE)
        package.__path__ = []
        sys.modules[LOCAL_PACKAGE] = package
    name = f"{LOCAL_PACKAGE}.{path.stem.replace('-', '_')}"
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _distribution(point: importlib.metadata.EntryPoint) -> str | None:
    return point.dist.metadata["Name"] if point.dist else None


def _check_hook_names(manager: pluggy.PluginManager, plugin: Any) -> None:
    """Catch the silent mistakes: a misspelled hook, or a hook function missing `@hookimpl`."""
    for attribute in dir(plugin):
        if not attribute.startswith("ofa_") or not callable(getattr(plugin, attribute, None)):
            continue
        if attribute not in HOOK_NAMES:
            close = difflib.get_close_matches(attribute, sorted(HOOK_NAMES), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise OFAError(f"unknown hook '{attribute}'{hint}")
        if manager.parse_hookimpl_opts(plugin, attribute) is None:
            raise OFAError(f"'{attribute}' is not decorated with ofa_core.plugin.hookimpl, so it would never be called")
