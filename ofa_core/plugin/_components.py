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
Built = TypeVar("Built", bound=type)
Hook = TypeVar("Hook", bound=Callable[..., Any])


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


class Metrics(dict[str, MetricSpec]):
    """A plugin's metrics by name, each declared on its class: `@METRICS.add("name", "description")` above
    `class XScores` whose `__init__(self, options: XOptions)` names the options class, said there once."""

    def add(
        self, name: str, description: str, *, example_score: str | None = None, higher_is_better: bool = True
    ) -> Callable[[Built], Built]:
        def declare(build: Built) -> Built:
            if name in self:
                raise ValueError(f"metric {name!r} is declared twice")
            self[name] = MetricSpec(
                options=_options_of(build, "metric"),
                build=build,
                higher_is_better=higher_is_better,
                description=description,
                example_score=example_score,
            )
            return build

        return declare


def _options_of(target: Callable[..., Any], kind: str = "reader") -> type:
    """The class annotated on the first parameter of a reader function or a metric class's `__init__`
    (`options: XOptions`)."""
    first = next(iter(inspect.signature(target).parameters), None)
    hints = typing.get_type_hints(target.__init__ if isinstance(target, type) else target)
    options = hints.get(first) if first is not None else None
    if not isinstance(options, type):
        raise TypeError(
            f"{target.__qualname__}: annotate its first parameter with the {kind}'s options class "
            f"(options: XOptions), which {kind.capitalize()}s.add registers with it"
        )
    return options


DEFAULT_LOSS = "label_smoothed_cross_entropy"
"""The core's loss, which every built-in task trains with unless a recipe names another."""
TASK_HOOKS = ("preprocess", "postprocess", "closed_set", "allowed_tokens")
"""The `TaskSpec` callables a task may declare with `Task.hook`, each named as its function."""


@attrs.define
class Task:
    """A plugin's task, declared once at the top of its module; its hooks are the functions marked `@TASK.hook`
    below (named `preprocess`, `postprocess`, `closed_set` or `allowed_tokens`, as `TaskSpec` calls them).

    `Components(task=TASK, ...)` completes what every task would otherwise repeat: the prompts are the Components'
    templates (each language's), the reader its first reader, the metrics its metrics in order, the loss the core's
    label-smoothed cross-entropy, the options class the one the hooks annotate their `options` parameter with;
    `reader`, `metrics`, `loss` and `options` given here take precedence.
    """

    name: str
    description: str
    generation: str | dict
    """As `TaskSpec.generation`: an official search name or GenerationConfig settings."""
    options: type | None = None
    """The `task.options` class; by default the annotation of the hooks' `options` parameter."""
    reader: str | None = None
    metrics: tuple[str, ...] | None = None
    loss: str = DEFAULT_LOSS
    hooks: dict[str, Callable] = attrs.field(factory=dict)

    def hook(self, function: Hook) -> Hook:
        if function.__name__ not in TASK_HOOKS:
            raise TypeError(f"{function.__qualname__}: a task's hooks are named {', '.join(TASK_HOOKS)}")
        self.hooks[function.__name__] = function
        return function

    def hooks_options(self) -> type | None:
        """The class the hooks annotate `options` with (none: the task has no options); one class for all."""
        found = {}
        for function in self.hooks.values():
            try:
                annotation = typing.get_type_hints(function).get("options")
            except (NameError, AttributeError) as error:
                raise TypeError(
                    f"task {self.name!r}: cannot read {function.__name__}'s annotations ({error}); "
                    f"give the options class as Task(..., options=XOptions)"
                ) from None
            if isinstance(annotation, type) and annotation is not type(None):
                found[function.__name__] = annotation
        if len(set(found.values())) > 1:
            named = ", ".join(f"{hook}: {options.__name__}" for hook, options in found.items())
            raise TypeError(f"task {self.name!r}: its hooks annotate options with different classes ({named})")
        return next(iter(found.values()), None)

    def spec(self, components: Components) -> TaskSpec:
        """The `TaskSpec` this declaration and the plugin's other components make."""
        return TaskSpec(
            prompts=components.prompt_names(),
            reader=self.reader if self.reader is not None else next(iter(components.readers)),
            loss=self.loss,
            metrics=self.metrics if self.metrics is not None else tuple(components.metrics),
            generation=self.generation,
            options=self.options if self.options is not None else self.hooks_options(),
            description=self.description,
            **self.hooks,
        )


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
    task: Task | None = None
    """A task declared with `Task`, registered beside `tasks` with what these components complete it with."""

    def all_tasks(self) -> dict[str, TaskSpec]:
        """`tasks` and the declared `task`'s spec."""
        return {**self.tasks, **({self.task.name: self.task.spec(self)} if self.task is not None else {})}

    def install(self, namespace: dict[str, Any]) -> None:
        """Bind the hooks that have something to register into a plugin module's `namespace` (its `globals()`).

        A hook the module defines itself is an error rather than silently replaced: one hook name, one body.
        """
        kinds = {
            "prompts": self.prompts,
            "readers": self.readers,
            "losses": self.losses,
            "metrics": self.metrics,
            "tasks": self.tasks or self.task,
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
        _register_all(register, self.all_tasks())
