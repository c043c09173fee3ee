"""Resolving a recipe: look up its task and components in the registry and build their options.

Unknown names and bad options fail here, before any model loads, with the file and field named.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ofa_core.model.errors import OFAError
from ofa_core.model.search import OFFICIAL_SEARCH, search_for_language
from ofa_core.plugin.specs import PATH_METADATA, ClosedSet, LossSpec, MetricSpec, PromptTemplate, ReaderSpec, TaskSpec
from ofa_core.recipe.paths import MissingPathError, resolve_path
from ofa_core.recipe.schema import RecipeError, build
from ofa_core.recipe.sections import Component, DataSection, Recipe, TaskEntry
from ofa_core.registry.components import Registry


@attrs.frozen
class Resolved:
    """One task of a recipe with its components looked up in the registry, each with its options built."""

    task_name: str
    task: TaskSpec
    task_options: Any
    prompt: PromptTemplate
    reader: ReaderSpec
    reader_options: Any
    loss: LossSpec
    loss_options: Any
    metrics: tuple[tuple[str, MetricSpec, Any], ...]
    generation: str | dict
    closed_set: ClosedSet | None = None
    """The task's answer set for these options (None: open-ended), read once, at validation."""
    data: DataSection = attrs.field(factory=DataSection)
    """Where the task's records come from and their token lengths."""
    label: str = ""
    """The task's name in a mixture's logs, metrics and files; empty in a single-task recipe."""
    weight: float = 1.0
    """The task's relative share of training steps in a mixture."""


def closed_set_of(task: TaskSpec, options: Any, prompt: PromptTemplate) -> ClosedSet | None:
    """The task's closed set for these options; answers are scored right after BOS, so no decoder prefix."""
    closed_set = task.closed_set(options) if task.closed_set is not None else None
    if closed_set is not None and prompt.decoder_prefix:
        raise OFAError(f"prompt '{prompt.name}' has a decoder_prefix, which closed-set decoding does not support; "
                       f"use a prompt without one or drop the task's answer set")
    return closed_set


def build_options(options_class: type | None, values: Mapping[str, Any], field: str, base: Path) -> Any:
    """An instance of a component's options class from recipe JSON; path options resolved."""
    if options_class is None:
        if values:
            raise RecipeError(f"{field}: this component takes no options, got {', '.join(values)}")
        return None
    options = build(options_class, dict(values), field)
    changes = {}
    for attribute in attrs.fields(options_class):
        meta = attribute.metadata.get(PATH_METADATA)
        value = getattr(options, attribute.name)
        if meta is not None and isinstance(value, str):
            changes[attribute.name] = resolve_path(value, base, f"{field}.{attribute.name}", must_exist=meta["must_exist"])
    return attrs.evolve(options, **changes) if changes else options


def resolve(recipe: Recipe, registry: Registry) -> Resolved:
    """The components of a single-task recipe (see `resolve_tasks` for any recipe); errors name file and field."""
    if recipe.spec.multitask:
        raise recipe.error("tasks: a multi-task recipe resolves to several tasks; use resolve_tasks")
    return resolve_tasks(recipe, registry)[0]


def resolve_tasks(recipe: Recipe, registry: Registry) -> tuple[Resolved, ...]:
    """Every task of the recipe with its components looked up and options built: one for a single-task recipe,
    one per entry of `tasks` for a mixture. Errors name the file and the JSON path (`tasks[1].data.reader`)."""
    try:
        return tuple(_resolve_entry(recipe, registry, index, entry) for index, entry in enumerate(recipe.spec.entries))
    except MissingPathError as error:
        raise recipe.missing(str(error), error.path) from None
    except RecipeError as error:
        raise recipe.error(str(error)) from None


def _resolve_entry(recipe: Recipe, registry: Registry, index: int, entry: TaskEntry) -> Resolved:
    base = recipe.base_dir

    def field(name: str) -> str:
        return recipe.spec.field(index, name)

    def lookup(namespace, name: str, at: str):
        if name not in namespace:
            raise recipe.error(f"{field(at)}: {namespace.unknown_message(name)}")
        return namespace.get(name)

    section = entry.task
    task = lookup(registry.tasks, section.name, "task.name")
    lang = section.lang or next(iter(task.prompts), None)
    if section.prompt is not None:
        prompt_name = section.prompt
    elif lang in task.prompts:
        prompt_name = task.prompts[lang]
    else:
        close = difflib.get_close_matches(str(lang), list(task.prompts), n=1)
        hint = f"did you mean '{close[0]}'?; " if close else ""
        raise recipe.error(f"{field('task.lang')}: task '{section.name}' has no '{lang}' prompt ({hint}languages: {', '.join(task.prompts)})")
    prompt = lookup(registry.prompts, prompt_name, "task.prompt")
    reader_ref = entry.data.reader or Component(task.reader)
    reader = lookup(registry.readers, reader_ref.name, "data.reader")
    loss_ref = entry.loss or Component(task.loss)
    loss = lookup(registry.losses, loss_ref.name, "loss")
    metric_refs = entry.metrics if entry.metrics is not None else [Component(m) for m in task.metrics]
    metrics = []
    for i, ref in enumerate(metric_refs):
        metric = lookup(registry.metrics, ref.name, f"metrics[{i}]")
        metrics.append((ref.name, metric, build_options(metric.options, ref.options, field(f"metrics[{i}]"), base)))
    task_options = build_options(task.options, section.options, field("task.options"), base)
    try:
        generation = _generation(entry.generation if entry.generation is not None else task_search(task, prompt))
        closed_set = closed_set_of(task, task_options, prompt)
    except RecipeError as error:
        raise RecipeError(f"{field('')}{error}" if recipe.spec.multitask else str(error)) from None
    return Resolved(
        task_name=section.name, task=task, task_options=task_options, prompt=prompt, reader=reader,
        reader_options=build_options(reader.options, reader_ref.options, field("data.reader"), base),
        loss=loss, loss_options=build_options(loss.options, loss_ref.options, field("loss"), base),
        metrics=tuple(metrics), generation=generation, closed_set=closed_set, data=entry.data,
        label=entry.name if recipe.spec.multitask else "", weight=entry.weight)


def task_search(task: TaskSpec, prompt: PromptTemplate) -> str | dict:
    """The task's default search, in its prompt language's official variant where one exists."""
    from ofa_core.model.search import search_for_language

    return search_for_language(task.generation, prompt.lang) if isinstance(task.generation, str) else task.generation


def _generation(value: str | dict) -> str | dict:
    from ofa_core.model.search import OFFICIAL_SEARCH

    if isinstance(value, str) and value not in OFFICIAL_SEARCH:
        close = difflib.get_close_matches(value, sorted(OFFICIAL_SEARCH), n=1)
        hint = f"did you mean '{close[0]}'?; " if close else ""
        raise RecipeError(f"generation: unknown official search '{value}' ({hint}known: {', '.join(sorted(OFFICIAL_SEARCH))})")
    return value
