"""`ofa recipe show`: every resolved value of a recipe and where it came from (a file, `--set`, a default)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ofa_core.recipe.loading import flatten, origin_of
from ofa_core.recipe.resolution import Resolved
from ofa_core.recipe.sections import Component, Recipe


def resolved_values(recipe: Recipe, resolved: Resolved | None = None) -> dict[str, tuple[Any, str]]:
    """Every leaf of the resolved recipe with where it came from (default, a file, --set).

    With `resolved`, components show what will actually run: the task's defaults where the recipe
    names none, and every option of each component (defaults included, paths made absolute).
    """
    spec = attrs.asdict(recipe.spec, recurse=True)
    spec.pop("schema", None)
    spec.pop("extends", None)
    training = attrs.asdict(recipe.training)
    spec["training"] = training
    out = {}
    for path, value in flatten(spec).items():
        # Component objects flatten to name/options; show them as the user wrote them.
        json_path = path.replace(".options.", ".") if (".options." in path and not path.startswith("task.")) else path
        origin = origin_of(recipe.origins, json_path)
        if path in ("output_dir", "training.output_dir"):
            origin = recipe.origins.get("output_dir") or recipe.origins.get("training.output_dir") or "default"
        out[json_path] = (value, origin)
    if resolved is None:
        return out
    replaced = ("data.reader", "loss", "metrics", "generation", "task.options")
    out = {k: v for k, v in out.items() if not k.startswith(replaced)}
    spec, origins = recipe.spec, recipe.origins
    out.update(_component_rows("data.reader", spec.data.reader, resolved.task.reader, resolved.reader_options, origins))
    out.update(_component_rows("loss", spec.loss, resolved.task.loss, resolved.loss_options, origins))
    for index, (name, _metric, options) in enumerate(resolved.metrics):
        given = spec.metrics[index] if spec.metrics is not None else None
        out.update(_component_rows(f"metrics[{index}]", given, name, options, origins))
    out.update(_option_rows("task.options", resolved.task_options, spec.task.options, origins))
    out["generation"] = (resolved.generation, origin_of(origins, "generation") if spec.generation is not None else "task default")
    return out


def _component_rows(path: str, given: Component | None, name: str, options: Any, origins: Mapping[str, str]) -> dict:
    json_path = path.replace("[", ".").replace("]", "")  # origins use dots for list indices too
    origin = origin_of(origins, f"{json_path}.name") if given is not None else "task default"
    return {f"{path}.name": (name, origin), **_option_rows(path, options, given.options if given else {}, origins)}


def _option_rows(path: str, options: Any, given: Mapping[str, Any], origins: Mapping[str, str]) -> dict:
    """Every option field; those the recipe gave take their origin, the others are defaults."""
    if options is None:
        return {}
    json_path = path.replace("[", ".").replace("]", "")
    return {f"{path}.{field.name}": (getattr(options, field.name),
                                     origin_of(origins, f"{json_path}.{field.name}") if field.name in given else "default")
            for field in attrs.fields(type(options))}


