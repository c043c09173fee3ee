"""The registry: one namespace per component kind, filled by calling each plugin's hooks.

Every name remembers the plugin that registered it (name, version, origin), so a duplicate is an
error naming both plugins and an unknown name can say which plugins failed to load.
"""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Callable
from typing import Any

import attrs
import pluggy

from ofa_core._errors import OFAError
from ofa_core.plugin import LossSpec, MetricSpec, PromptTemplate, ReaderSpec, TaskSpec

# namespace attribute -> (hook filling it, singular kind used in messages, spec class)
KINDS: dict[str, tuple[str, str, type]] = {
    "tasks": ("ofa_register_tasks", "task", TaskSpec),
    "prompts": ("ofa_register_prompts", "prompt", PromptTemplate),
    "readers": ("ofa_register_readers", "reader", ReaderSpec),
    "losses": ("ofa_register_losses", "loss", LossSpec),
    "metrics": ("ofa_register_metrics", "metric", MetricSpec),
}


class UnknownComponent(OFAError):
    """A name no loaded plugin registered."""


class DuplicateComponent(OFAError):
    """Two plugins registered the same name without `replace=True`."""


class InvalidSpec(OFAError):
    """A plugin registered something that is not the spec class of that kind."""


@attrs.frozen
class PluginInfo:
    """A plugin that loaded: its name, distribution version and where it was found."""

    name: str
    version: str | None
    origin: str  # "builtin" | "entrypoint" | "plugins-dir" | "recipe" | "inline"


@attrs.frozen
class PluginFailure:
    """A plugin that failed to load or register; the rest of the plugins still work."""

    name: str
    origin: str
    error: str  # "ExceptionClass: message", one line
    traceback: str

    @classmethod
    def from_exception(cls, name: str, origin: str, exc: BaseException) -> PluginFailure:
        summary = " ".join(f"{type(exc).__name__}: {exc}".split())
        return cls(name, origin, summary, "".join(traceback.format_exception(exc)))


@attrs.frozen
class Entry:
    """One registered component and its provenance."""

    name: str
    spec: Any
    plugin: str
    version: str | None
    origin: str


class Namespace:
    """The components of one kind, by name."""

    def __init__(self, kind: str, spec_type: type, registry: Registry) -> None:
        self.kind = kind
        self.spec_type = spec_type
        self._registry = registry
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry, *, replace: bool = False) -> None:
        """Store `entry`; a clash with another plugin is an error unless `replace`."""
        old = self._entries.get(entry.name)
        if old is not None and not replace:
            raise DuplicateComponent(
                f"{self.kind} '{entry.name}' registered by {_describe(old)} and {_describe(entry)}; "
                f"rename one, disable a plugin with OFA_DISABLE_PLUGINS, or pass replace=True to override on purpose"
            )
        self._entries[entry.name] = entry

    def get(self, name: str) -> Any:
        """The spec registered as `name`."""
        return self.entry(name).spec

    def entry(self, name: str) -> Entry:
        """The entry registered as `name`, or an error with did-you-mean and the plugins that failed."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponent(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        parts = []
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        if close:
            parts.append("did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
        parts.append(f"available: {', '.join(self.names()) or 'none'}")
        loaded = ", ".join(info.name for info in self._registry.plugins)
        parts.append(f"plugins loaded: {loaded or 'none'}")
        for failure in self._registry.failures:
            parts.append(f"plugin '{failure.name}' failed to load: {failure.error} (see 'ofa plugins')")
        return f"unknown {self.kind} '{name}' (" + "; ".join(parts) + ")"

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def _describe(entry: Entry) -> str:
    version = f" {entry.version}" if entry.version else ""
    return f"'{entry.plugin}'{version} ({entry.origin})"


class Registry:
    """All components from all plugins, plus which plugins loaded and which failed."""

    def __init__(self, plugins: list[PluginInfo] | None = None, failures: list[PluginFailure] | None = None) -> None:
        self.plugins: list[PluginInfo] = list(plugins or [])
        self.failures: list[PluginFailure] = list(failures or [])
        self.tasks = Namespace("task", TaskSpec, self)
        self.prompts = Namespace("prompt", PromptTemplate, self)
        self.readers = Namespace("reader", ReaderSpec, self)
        self.losses = Namespace("loss", LossSpec, self)
        self.metrics = Namespace("metric", MetricSpec, self)

    def namespace(self, kind: str) -> Namespace:
        """The namespace by attribute name ('tasks') or singular kind ('task')."""
        for attribute, (_hook, singular, _type) in KINDS.items():
            if kind in (attribute, singular):
                return getattr(self, attribute)
        raise KeyError(kind)


def build_registry(
    pm: pluggy.PluginManager,
    plugins: list[PluginInfo],
    failures: list[PluginFailure],
    *,
    strict: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Registry:
    """Call every plugin's registering hooks one plugin at a time, each with its own `register`.

    Each call goes through pluggy (a hook caller holding only that plugin's implementation), so
    hook tracing (OFA_TRACE_PLUGINS) and call monitoring see it like any other hook call.

    Plugins are called in the order they were registered with `pm` (built-ins first), so a
    duplicate names the built-in first. A plugin whose hook raises is recorded in `failures` and
    its registrations are dropped, unless `strict`; a duplicate between two plugins always raises.
    """
    registry = Registry(plugins, failures)
    info_by_name = {info.name: info for info in plugins}
    ordered = _in_registration_order(pm)
    for plugin in ordered:
        name = pm.get_name(plugin)
        info = info_by_name.get(name) or PluginInfo(name, None, "inline")
        others = [other for other in ordered if other is not plugin]
        staged: list[tuple[Namespace, Entry, bool]] = []
        try:
            for attribute, (hook, _kind, _type) in KINDS.items():
                caller = pm.subset_hook_caller(hook, remove_plugins=others)
                if not any(impl.plugin is plugin for impl in caller.get_hookimpls()):
                    continue
                # Through pluggy (not the function itself), so OFA_TRACE_PLUGINS traces the call.
                caller(register=_Register(info, getattr(registry, attribute), staged))
        except Exception as exc:
            if strict:
                raise
            failure = PluginFailure.from_exception(info.name, info.origin, exc)
            registry.failures.append(failure)
            registry.plugins = [p for p in registry.plugins if p.name != info.name]
            if warn:
                warn(
                    f"plugin '{info.name}' failed to register: {failure.error} (disable with "
                    f"OFA_DISABLE_PLUGINS={info.name})"
                )
            continue
        for namespace, entry, replace in staged:
            namespace.add(entry, replace=replace)
    return registry


class _Register:
    """The `register` callback one plugin's hook receives: checks each spec and stages it under that plugin."""

    def __init__(self, info: PluginInfo, namespace: Namespace, staged: list[tuple[Namespace, Entry, bool]]) -> None:
        self.info, self.namespace, self.staged = info, namespace, staged

    def __call__(self, name: str, spec: Any, *, replace: bool = False) -> None:
        kind, plugin = self.namespace.kind, self.info.name
        if not isinstance(name, str) or not name:
            raise InvalidSpec(f"plugin '{plugin}' registered a {kind} with name {name!r}; names are non-empty strings")
        if not isinstance(spec, self.namespace.spec_type):
            raise InvalidSpec(
                f"plugin '{plugin}' registered {kind} '{name}' as {type(spec).__name__}; "
                f"expected ofa_core.plugin.{self.namespace.spec_type.__name__}"
            )
        self.staged.append((self.namespace, Entry(name, spec, plugin, self.info.version, self.info.origin), replace))

    def __repr__(self) -> str:
        # What a hook-call trace (OFA_TRACE_PLUGINS) shows for the `register` argument.
        return f"<register of plugin '{self.info.name}'>"


def _in_registration_order(pm: pluggy.PluginManager) -> list[Any]:
    # pm.get_plugins() is a set; the name->plugin mapping keeps insertion (discovery) order.
    return [plugin for _name, plugin in pm.list_name_plugin() if plugin is not None]
