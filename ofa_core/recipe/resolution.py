"""Resolving a recipe: look up its task and components in the registry and build their options.

Unknown names and bad options fail here, before any model loads, with the file and field named.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ofa_core._errors import OFAError
from ofa_core.model.search import OFFICIAL_SEARCH, search_for_language
from ofa_core.plugin import ClosedSet, LossSpec, MetricSpec, PromptTemplate, ReaderSpec, TaskSpec
from ofa_core.plugin._specs import PATH_METADATA
from ofa_core.recipe.paths import MissingPathError, resolve_path, unchecked_path
from ofa_core.recipe.problems import raise_problems
from ofa_core.recipe.purpose import TRAINING, Purpose
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
    loss: LossSpec | None
    """None when the command trains nothing (an evaluation): the loss is then neither looked up nor built."""
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
    registered_metrics: Any = None
    """Every metric of the registry the recipe was resolved against: a loss may score with one by name
    (SCST's `reward`), plugins from `--plugins-dir` included."""


def registered_metric(metrics: Any, base: Path, name: str, options: Mapping[str, Any]) -> Any:
    """A fresh metric registered as `name` among `metrics`, built with `options` (paths relative to `base`), for a
    loss that scores with a metric (SCST's `reward` and `reward_options`)."""
    if name not in metrics:
        raise OFAError(f"loss.reward: {metrics.unknown_message(name)}")
    spec = metrics.get(name)
    return spec.build(build_options(spec.options, options, "loss.reward_options", base))


def closed_set_of(task: TaskSpec, options: Any, prompt: PromptTemplate) -> ClosedSet | None:
    """The task's closed set for these options (answers are scored after the prompt's decoder part, if any)."""
    closed_set = task.closed_set(options) if task.closed_set is not None else None
    if closed_set is not None and closed_set.inference == "beam" and prompt.prompt_type == "src":
        raise OFAError(
            f"prompt '{prompt.name}' has prompt type 'src', whose answer is read by ranking: "
            f"set the task option inference to 'rank'"
        )
    return closed_set


def build_options(
    options_class: type | None, values: Mapping[str, Any], field: str, base: Path, splits: frozenset[str] | None = None
) -> Any:
    """An instance of a component's options class from recipe JSON; path options resolved. With `splits`, the
    reads of a command that opens only those splits: another split's file (`path_option(split=...)`) need not
    exist."""
    if options_class is None:
        if values:
            raise RecipeError(f"{field}: this component takes no options, got {', '.join(values)}")
        return None
    options = build(options_class, dict(values), field)
    changes = {}
    for attribute in attrs.fields(options_class):
        meta = attribute.metadata.get(PATH_METADATA)
        value = getattr(options, attribute.name)
        if meta is None or not isinstance(value, str):
            continue
        where = f"{field}.{attribute.name}"
        if splits is not None and meta.get("split") not in (None, *splits):
            changes[attribute.name] = unchecked_path(value, base, where)
        else:
            changes[attribute.name] = resolve_path(value, base, where, must_exist=meta["must_exist"])
    return attrs.evolve(options, **changes) if changes else options


def resolve(recipe: Recipe, registry: Registry, purpose: Purpose = TRAINING) -> Resolved:
    """The components of a single-task recipe (see `resolve_tasks` for any recipe); errors name file and field."""
    if recipe.spec.multitask:
        raise recipe.error("tasks: a multi-task recipe resolves to several tasks; use resolve_tasks")
    return resolve_tasks(recipe, registry, purpose)[0]


def resolve_tasks(recipe: Recipe, registry: Registry, purpose: Purpose = TRAINING) -> tuple[Resolved, ...]:
    """Every task of the recipe with its components looked up and options built: one for a single-task recipe,
    one per entry of `tasks` for a mixture. Errors name the file and the JSON path (`tasks[1].data.reader`);
    several mistakes raise a `RecipeProblems` listing each."""
    resolution = resolve_all(recipe, registry, purpose)
    raise_problems(resolution.problems)
    return resolution.tasks


@attrs.frozen
class Resolution:
    """What resolving a recipe found: its tasks, every mistake, and the parts of each entry that did resolve."""

    tasks: tuple[Resolved, ...]
    """The entries whose every component resolved."""
    problems: list[OFAError]
    parts: tuple[dict[str, Any], ...]
    """Per entry, its components that resolved, by `Resolved` field name: a later check of one part (the answers
    against the tokenizer, the reader's data) runs even when another part of the entry is wrong."""


def resolve_all(recipe: Recipe, registry: Registry, purpose: Purpose = TRAINING) -> Resolution:
    """Every task and every mistake found in any of them (each component is checked even when another of its
    task is wrong), as far as `purpose` reads them: an evaluation needs no loss and only its split's files."""
    problems: list[OFAError] = []
    parts = tuple(
        _resolve_entry(recipe, registry, index, entry, problems, purpose)
        for index, entry in enumerate(recipe.spec.entries)
    )
    tasks = tuple(Resolved(**found) for found in parts if len(found) == len(attrs.fields(Resolved)))
    return Resolution(tasks, problems, parts)


class _Failed:
    """What a check that reported its problem leaves behind."""


FAILED = _Failed()


@attrs.frozen
class _Checks:
    """Runs one entry's resolution steps, keeping each step's problem instead of stopping at the first, so a recipe's
    problems are all reported at once."""

    recipe: Recipe
    index: int
    problems: list[OFAError]

    def field(self, name: str) -> str:
        return self.recipe.spec.field(self.index, name)

    def attempt(self, function, *args, prefixed: bool = False) -> Any:
        """function(*args), or FAILED with its error in `problems` (`prefixed`: the message lacks the task's path)."""
        recipe = self.recipe
        try:
            return function(*args)
        except MissingPathError as error:
            self.problems.append(recipe.missing(str(error), error.path))
        except RecipeError as error:
            prefix = self.field("") if prefixed and recipe.spec.multitask else ""
            self.problems.append(recipe.error(f"{prefix}{error}"))
        except OFAError as error:
            self.problems.append(error)
        return FAILED

    def lookup(self, namespace, name: str, at: str):
        if name not in namespace:
            raise self.recipe.error(f"{self.field(at)}: {namespace.unknown_message(name)}")
        return namespace.get(name)

    def component(self, namespace, ref: Component | None, at: str, *extra: Any) -> tuple[Any, Any]:
        """The registered component a recipe's reference at `at` names, and its options built (FAILED where not)."""
        spec = self.attempt(self.lookup, namespace, ref.name, at) if ref else FAILED
        if not _ok(spec):
            return spec, FAILED
        return spec, self.attempt(
            build_options, spec.options, ref.options, self.field(at), self.recipe.base_dir, *extra
        )


def _ok(*values: Any) -> bool:
    return not any(value is FAILED for value in values)


def _resolve_entry(
    recipe: Recipe, registry: Registry, index: int, entry: TaskEntry, problems: list[OFAError], purpose: Purpose
) -> dict[str, Any]:
    """The entry's resolved parts by `Resolved` field name (all of them when nothing is wrong)."""
    base = recipe.base_dir
    checks = _Checks(recipe, index, problems)
    attempt, field, ok = checks.attempt, checks.field, _ok
    section = entry.task
    task = attempt(checks.lookup, registry.tasks, section.name, "task.name")
    prompt = attempt(_prompt, recipe, registry, task, section, field) if ok(task) else FAILED
    reader_ref = entry.data.reader or (Component(task.reader) if ok(task) else None)
    reader, reader_options = checks.component(registry.readers, reader_ref, "data.reader", purpose.splits)
    loss, loss_options = None, None
    if purpose.trains:
        loss_ref = entry.loss or (Component(task.loss) if ok(task) else None)
        loss, loss_options = checks.component(registry.losses, loss_ref, "loss")
    metric_refs = (
        entry.metrics if entry.metrics is not None else [Component(m) for m in task.metrics] if ok(task) else []
    )
    metrics = [
        (ref.name, *checks.component(registry.metrics, ref, f"metrics[{i}]")) for i, ref in enumerate(metric_refs)
    ]
    task_options = (
        attempt(build_options, task.options, section.options, field("task.options"), base) if ok(task) else FAILED
    )
    search = (
        entry.generation if entry.generation is not None else task_search(task, prompt) if ok(task, prompt) else None
    )
    generation = attempt(_generation, search, prefixed=True) if search is not None else FAILED
    closed_set = (
        attempt(closed_set_of, task, task_options, prompt, prefixed=True) if ok(task, task_options, prompt) else FAILED
    )
    parts = dict(
        task_name=section.name,
        task=task,
        task_options=task_options,
        prompt=prompt,
        reader=reader,
        reader_options=reader_options,
        loss=loss,
        loss_options=loss_options,
        generation=generation,
        closed_set=closed_set,
        data=entry.data,
        label=entry.name if recipe.spec.multitask else "",
        weight=entry.weight,
        registered_metrics=registry.metrics,
    )
    if ok(*(value for metric in metrics for value in metric[1:])):
        parts["metrics"] = tuple(metrics)
    return {name: value for name, value in parts.items() if ok(value)}


def _prompt(recipe: Recipe, registry: Registry, task: TaskSpec, section: Any, field: Any) -> PromptTemplate:
    lang = section.lang or next(iter(task.prompts), None)
    if section.prompt is not None:
        prompt_name = section.prompt
    elif lang in task.prompts:
        prompt_name = task.prompts[lang]
    else:
        close = difflib.get_close_matches(str(lang), list(task.prompts), n=1)
        hint = f"did you mean '{close[0]}'?; " if close else ""
        raise recipe.error(
            f"{field('task.lang')}: task '{section.name}' has no '{lang}' prompt ({hint}languages: "
            f"{', '.join(task.prompts)})"
        )
    if prompt_name not in registry.prompts:
        raise recipe.error(f"{field('task.prompt')}: {registry.prompts.unknown_message(prompt_name)}")
    prompt = registry.prompts.get(prompt_name)
    if section.prompt_type is None or section.prompt_type == prompt.prompt_type:
        return prompt
    if prompt.decoder_prefix:
        raise recipe.error(
            f"{field('task.prompt_type')}: prompt '{prompt.name}' has its own decoder_prefix; "
            f"drop task.prompt_type or pick a prompt without one"
        )
    return attrs.evolve(prompt, prompt_type=section.prompt_type)


def task_search(task: TaskSpec, prompt: PromptTemplate) -> str | dict:
    """The task's default search, in its prompt language's official variant where one exists."""
    return search_for_language(task.generation, prompt.lang) if isinstance(task.generation, str) else task.generation


def _generation(value: str | dict) -> str | dict:
    if isinstance(value, str) and value not in OFFICIAL_SEARCH:
        close = difflib.get_close_matches(value, sorted(OFFICIAL_SEARCH), n=1)
        hint = f"did you mean '{close[0]}'?; " if close else ""
        raise RecipeError(
            f"generation: unknown official search '{value}' ({hint}known: {', '.join(sorted(OFFICIAL_SEARCH))})"
        )
    return value
