"""`ofa recipe show`: every resolved value of a recipe and where it came from (a file, `--set`, a default)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ofa_core.recipe.loading import flatten, origin_of
from ofa_core.recipe.resolution import Resolved
from ofa_core.recipe.sections import Component, Recipe, TaskEntry


def resolved_values(
    recipe: Recipe, resolved: Sequence[Resolved] | Resolved | None = None
) -> dict[str, tuple[Any, str]]:
    """Every leaf of the resolved recipe with where it came from (default, a file, --set).

    With `resolved` (every task, from `resolve_tasks`), components show what will actually run: the task's
    defaults where the recipe names none, and every option of each component (defaults included, paths made
    absolute). A mixture's rows are under `tasks[i].`.
    """
    spec = attrs.asdict(recipe.spec, recurse=True)
    for key in ("schema", "extends", "tasks", "task" if recipe.spec.multitask else "mixture"):
        spec.pop(key, None)
    spec["training"] = attrs.asdict(recipe.training)
    out = {}
    for path, value in flatten(spec).items():
        # Component objects flatten to name/options; show them as the user wrote them.
        json_path = path.replace(".options.", ".") if (".options." in path and not path.startswith("task.")) else path
        origin = origin_of(recipe.origins, json_path)
        if path in ("output_dir", "training.output_dir"):
            origin = recipe.origins.get("output_dir") or recipe.origins.get("training.output_dir") or "default"
        out[json_path] = (value, origin)
    if resolved is None and not recipe.spec.multitask:
        return out
    if isinstance(resolved, Resolved):
        resolved = (resolved,)
    if recipe.spec.multitask:
        out = {k: v for k, v in out.items() if not k.startswith(("task.", "data.", "loss", "metrics", "generation"))}
    else:
        out = {
            k: v
            for k, v in out.items()
            if not k.startswith(("data.reader", "loss", "metrics", "generation", "task.options"))
        }
    for index, entry in enumerate(recipe.spec.entries):
        out.update(_entry_rows(recipe, index, entry, resolved[index] if resolved else None))
    return out


def _entry_rows(recipe: Recipe, index: int, entry: TaskEntry, resolved: Resolved | None) -> dict[str, tuple[Any, str]]:
    """The rows of one task: all of them for a mixture's entry, the component rows for a single task."""
    spec, origins = recipe.spec, recipe.origins
    field = functools.partial(spec.field, index)
    out = {}
    if spec.multitask:
        origin = origin_of(origins, "tasks")
        fields = flatten(
            {
                "label": entry.name,
                "weight": entry.weight,
                "task": attrs.asdict(entry.task),
                "data": {k: v for k, v in attrs.asdict(entry.data).items() if k != "reader"},
            }
        )
        out.update(
            {
                field(path): (value, origin)
                for path, value in fields.items()
                if resolved is None or not path.startswith("task.options")
            }
        )
    if resolved is None:
        return out
    out.update(
        _component_rows(field("data.reader"), entry.data.reader, resolved.task.reader, resolved.reader_options, origins)
    )
    out.update(_component_rows(field("loss"), entry.loss, resolved.task.loss, resolved.loss_options, origins))
    for number, (name, _metric, options) in enumerate(resolved.metrics):
        given = entry.metrics[number] if entry.metrics is not None else None
        out.update(_component_rows(field(f"metrics[{number}]"), given, name, options, origins))
    out.update(_option_rows(field("task.options"), resolved.task_options, entry.task.options, origins))
    given = origin_of(origins, field("generation").replace("[", ".").replace("]", ""))
    out[field("generation")] = (resolved.generation, given if entry.generation is not None else "task default")
    return out


def _component_rows(path: str, given: Component | None, default: str, options: Any, origins: Mapping[str, str]) -> dict:
    """The component the recipe names (else the task's `default`) with every option."""
    json_path = path.replace("[", ".").replace("]", "")  # origins use dots for list indices too
    if given is None:
        return {f"{path}.name": (default, "task default"), **_option_rows(path, options, {}, origins)}
    return {
        f"{path}.name": (given.name, origin_of(origins, f"{json_path}.name")),
        **_option_rows(path, options, given.options, origins),
    }


def _option_rows(path: str, options: Any, given: Mapping[str, Any], origins: Mapping[str, str]) -> dict:
    """Every option field; those the recipe gave take their origin, the others are defaults."""
    if options is None:
        return {}
    json_path = path.replace("[", ".").replace("]", "")
    return {
        f"{path}.{field.name}": (
            getattr(options, field.name),
            origin_of(origins, f"{json_path}.{field.name}") if field.name in given else "default",
        )
        for field in attrs.fields(type(options))
    }
