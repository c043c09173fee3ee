"""A plugin's components declared once, as data, with the registering hooks that hand them over.

Every task plugin registered its prompts, readers, metrics and tasks with the same few loops. A
`Components` holds them instead, and its methods are those hooks: `COMPONENTS.install(globals())` puts
the ones with something to register into the plugin module, where pluggy looks for hooks.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from ofa_core.plugin._hooks import Register, hookimpl
from ofa_core.plugin._specs import LossSpec, MetricSpec, PromptTemplate, ReaderSpec, TaskSpec

OpenSplit = TypeVar("OpenSplit", bound=Callable[..., Any])


class Readers(dict[str, ReaderSpec]):
    """A plugin's readers by name, each declared where its function is: `@READERS.add("name", "description")` above
    `def read_x(options: XOptions, split: str)`. The options class is the one the function's first parameter names,
    so it is said once; `Components(readers=READERS)` registers them."""

    def add(self, name: str, description: str) -> Callable[[OpenSplit], OpenSplit]:
        def declare(open_split: OpenSplit) -> OpenSplit:
            if name in self:
                raise ValueError(
                    f"reader {name!r} is declared twice ({self[name].open.__name__}, {open_split.__name__})"
                )
            self[name] = ReaderSpec(options=_options_of(open_split), open=open_split, description=description)
            return open_split

        return declare


def _options_of(open_split: Callable[..., Any]) -> type:
    """The class annotated on a reader function's first parameter (`options: XOptions`)."""
    first = next(iter(inspect.signature(open_split).parameters), None)
    options = typing.get_type_hints(open_split).get(first) if first is not None else None
    if not isinstance(options, type):
        raise TypeError(
            f"{open_split.__qualname__}: annotate its first parameter with the reader's options class "
            "(options: XOptions), which Readers.add registers with it"
        )
    return options


def _templates(value: Iterable[PromptTemplate]) -> tuple[PromptTemplate, ...]:
    return tuple(value)


def _register_all(register: Register, components: Mapping[str, Any]) -> None:
    for name, spec in components.items():
        register(name, spec)


@attrs.frozen
class Components:
    """The prompts (each under its own name), readers, losses, metrics and tasks one plugin registers."""

    prompts: tuple[PromptTemplate, ...] = attrs.field(default=(), converter=_templates)
    readers: Mapping[str, ReaderSpec] = attrs.field(factory=dict)
    losses: Mapping[str, LossSpec] = attrs.field(factory=dict)
    metrics: Mapping[str, MetricSpec] = attrs.field(factory=dict)
    tasks: Mapping[str, TaskSpec] = attrs.field(factory=dict)

    def install(self, namespace: dict[str, Any]) -> None:
        """Bind the hooks that have something to register into a plugin module's `namespace` (its `globals()`).

        A hook the module defines itself is an error rather than silently replaced: one hook name, one body.
        """
        kinds = {
            "prompts": self.prompts,
            "readers": self.readers,
            "losses": self.losses,
            "metrics": self.metrics,
            "tasks": self.tasks,
        }
        for kind, components in kinds.items():
            if not components:
                continue
            hook = f"ofa_register_{kind}"
            if hook in namespace:
                raise TypeError(
                    f"{namespace.get('__name__')}: defines {hook} and registers {kind} in its Components; keep one"
                )
            namespace[hook] = getattr(self, hook)

    def prompt_names(self) -> dict[str, str]:
        """`TaskSpec.prompts` for these prompts: each language's template name."""
        return {template.lang: template.name for template in self.prompts}

    @hookimpl
    def ofa_register_prompts(self, register: Register) -> None:
        for template in self.prompts:
            register(template.name, template)

    @hookimpl
    def ofa_register_readers(self, register: Register) -> None:
        _register_all(register, self.readers)

    @hookimpl
    def ofa_register_losses(self, register: Register) -> None:
        _register_all(register, self.losses)

    @hookimpl
    def ofa_register_metrics(self, register: Register) -> None:
        _register_all(register, self.metrics)

    @hookimpl
    def ofa_register_tasks(self, register: Register) -> None:
        _register_all(register, self.tasks)
