"""Loading a recipe file: read it and its `extends` parents, apply `--set`, type-check, resolve paths.

Every error is one line naming the file and the JSON path, and says where a bad value came from
(a parent recipe, `--set`). Looking components up in the registry is the next step (`resolve`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core._errors import OFAError
from ofa_core.recipe.paths import MissingPathError, resolve_path, unchecked_path
from ofa_core.recipe.problems import raise_problems
from ofa_core.recipe.purpose import TRAINING, Purpose
from ofa_core.recipe.schema import RecipeError, build, errors_of
from ofa_core.recipe.sections import DataSection, MissingRecipePath, Recipe, RecipeFile, with_setup
from ofa_core.recipe.training import EVALUATION_SETTINGS, TrainingConfig


def read_json(path: Path, what: str = "recipe") -> dict:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise OFAError(
            f"{path}: {what} not found; check the path (relative paths are relative to the recipe that names them)"
        ) from None
    except orjson.JSONDecodeError as error:
        raise OFAError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise OFAError(f"{path}: a recipe is a JSON object, got {type(data).__name__}")
    return data


def _layers(path: Path, label: str, seen: tuple[Path, ...] = ()) -> list[tuple[dict, str, Path]]:
    """The recipe and its ancestors as (json, origin label, file), oldest ancestor first."""
    path = path.resolve()
    if path in seen:
        raise OFAError(f"{seen[-1]}: extends: cycle through {path}")
    data = read_json(path, "recipe" if not seen else "parent recipe")
    parents = data.get("extends") or []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise OFAError(f"{path}: extends: expected a path or a list of paths")
    layers = []
    for parent in parents:
        parent_path = path.parent / parent
        if not parent_path.is_file():
            raise OFAError(f"{path}: extends: {parent_path} not found; paths are relative to {path.parent}")
        layers += _layers(parent_path, f"parent {parent_path}", seen + (path,))
    return layers + [(data, label, path)]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


def _merge(base: dict, top: dict) -> dict:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _record(origins: dict[str, str], layer: dict, label: str) -> None:
    for path in flatten(layer):
        for old in [p for p in origins if p.startswith(path + ".") or path.startswith(p + ".")]:
            del origins[old]
        origins[path] = label


def parse_set(assignment: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (['a', 'b'], value); the value is JSON if it parses, else a string."""
    key, sep, text = assignment.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise OFAError(f"--set {assignment}: expected KEY.PATH=VALUE, e.g. --set training.learning_rate=1e-4")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    return key.split("."), value


def _set(data: dict, keys: list[str], value: Any) -> dict:
    if len(keys) == 1:
        return {**data, keys[0]: value}
    child = data.get(keys[0])
    if isinstance(child, str):  # the shorthand `"task": "caption"` means {"name": "caption"}
        child = {"name": child}
    return {**data, keys[0]: _set(child if isinstance(child, dict) else {}, keys[1:], value)}


def load(path: str | Path, overrides: Sequence[str] = (), purpose: Purpose = TRAINING) -> Recipe:
    """Read, merge, override and type-check a recipe; every error is one line naming file and field
    (several mistakes: a `RecipeProblems` listing each)."""
    recipe, problems = load_all(path, overrides, purpose)
    raise_problems(problems)
    return recipe


def load_all(
    path: str | Path, overrides: Sequence[str] = (), purpose: Purpose = TRAINING
) -> tuple[Recipe | None, list[OFAError]]:
    """The recipe and every mistake in it. A bad value is reported and its default used, so later checks still
    run; the recipe is None only when its shape leaves nothing to check (no model, neither task nor tasks).
    Without training (`purpose`), `model.checkpoint` and `training.resume_from_checkpoint` need not exist, and
    of the training settings only `EVALUATION_SETTINGS` are read (the others keep their defaults, unchecked).

    A file that is missing or not JSON, and a bad `extends` or `--set`, stop at once: there is nothing to check."""
    path = Path(path)
    layers = _layers(path, "this file")
    merged: dict = {}
    origins: dict[str, str] = {}
    for data, label, _file in layers:
        data = {k: v for k, v in data.items() if k != "extends"}
        merged = _merge(merged, data)
        _record(origins, data, label)
    for assignment in overrides:
        keys, value = parse_set(assignment)
        merged = _set(merged, keys, value)
        _record(origins, _set({}, keys, value), "--set")
    path = path.resolve()

    def fail(error: RecipeError) -> OFAError:
        field = error.field
        origin = next((o for p, o in origins.items() if p == field or p.startswith(field + ".")), None) or origin_of(
            origins, field
        )
        where = f" (value from {origin})" if origin not in (None, "this file", "default") else ""
        if isinstance(error, MissingPathError):
            return MissingRecipePath(f"{path}: {with_setup(f'{error}{where}', merged.get('setup'))}", error.path)
        return OFAError(f"{path}: {error}{where}")

    errors: list[RecipeError] = []
    spec = _build_reporting(RecipeFile, merged, "", errors)
    if spec is not None:
        try:
            _check_tasks(spec)
        except RecipeError as error:
            errors.append(error)
            spec = None
    if spec is None:
        return None, [fail(error) for error in errors]
    spec = _resolve_paths(spec, path.parent, errors, purpose)
    training = _training(spec, path, errors, purpose)
    return Recipe(path, spec, training, origins), [fail(error) for error in errors]


def _build_reporting(cls: type, data: dict, path: str, errors: list[RecipeError]) -> Any:
    """`build`, with each bad value appended to `errors` and dropped (its default applies) until the rest builds;
    None when what is left cannot build (a required key was bad)."""
    reported: list[str] = []
    for _ in range(len(flatten(data)) + 1):
        try:
            return build(cls, data, path)
        except RecipeError as error:
            found = [e for e in errors_of(error) if not any(_within(e.field, old) for old in reported)]
            errors += found
            reported += [e.field for e in found]
            pruned = data
            for single in errors_of(error):
                pruned = _without(pruned, _keys(single.field, path))
            if pruned == data:
                return None
            data = pruned
    return None


def _within(field: str, other: str) -> bool:
    return field == other or field.startswith((other + ".", other + "["))


_KEY = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _keys(field: str, prefix: str) -> list[str | int]:
    """`data.reader.folder` -> ['data', 'reader', 'folder'], relative to the object at `prefix`."""
    keys: list[str | int] = [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _KEY.finditer(field)]
    depth = len(list(_KEY.finditer(prefix))) if prefix else 0
    return keys[depth:]


def _without(data: Any, keys: list[str | int]) -> Any:
    """`data` with the value at `keys` removed (unchanged when it is not there)."""
    if not keys:
        return data
    key, rest = keys[0], keys[1:]
    if isinstance(data, dict) and isinstance(key, str) and key in data:
        if not rest:
            return {k: v for k, v in data.items() if k != key}
        return {**data, key: _without(data[key], rest)}
    if isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
        if not rest:
            return data[:key] + data[key + 1 :]
        return data[:key] + [_without(data[key], rest)] + data[key + 1 :]
    return data


def _check_tasks(spec: RecipeFile) -> None:
    """Exactly one of `task` and `tasks`; a mixture keeps its per-task sections inside its entries, with unique
    labels."""
    if (spec.task is None) == (spec.tasks is None):
        given = "both task and tasks" if spec.task is not None else "neither task nor tasks"
        raise RecipeError(f'task: {given} given; name one task with "task" or a mixture with "tasks": [...]')
    if spec.tasks is None:
        return
    if not spec.tasks:
        raise RecipeError("tasks: the list is empty; give at least one task")
    for key in ("loss", "metrics", "generation"):
        if getattr(spec, key) is not None:
            raise RecipeError(f"{key}: a multi-task recipe sets it per task; move it into each entry of tasks")
    if spec.data != DataSection():
        raise RecipeError("data: a multi-task recipe sets data per task; move it into each entry of tasks")
    seen: dict[str, int] = {}
    for index, entry in enumerate(spec.tasks):
        if entry.name in seen:
            raise RecipeError(
                f"tasks[{index}].label: '{entry.name}' is also the label of tasks[{seen[entry.name]}]; "
                f"give each entry a distinct label"
            )
        if "/" in entry.name:
            raise RecipeError(
                f"tasks[{index}].label: '{entry.name}' contains '/', which separates a label from a metric name"
            )
        seen[entry.name] = index


def _resolve_paths(spec: RecipeFile, base: Path, errors: list[RecipeError], purpose: Purpose) -> RecipeFile:
    """Absolute checkpoint and output paths; a missing checkpoint is reported (when training starts from it) and its
    path kept, so checks go on."""
    if not purpose.trains:
        checkpoint = unchecked_path(spec.model.checkpoint, base, "model.checkpoint")
    else:
        try:
            checkpoint = resolve_path(spec.model.checkpoint, base, "model.checkpoint", must_exist=True)
        except RecipeError as error:
            errors.append(error)
            checkpoint = error.path if isinstance(error, MissingPathError) else spec.model.checkpoint
    default_name = spec.name or (spec.task.name if spec.task is not None else "multitask")
    output_dir = spec.output_dir or spec.training.get("output_dir") or f"runs/{default_name}"
    if not isinstance(output_dir, str):
        errors.append(RecipeError(f"training.output_dir: expected string, got {output_dir!r}"))
        output_dir = f"runs/{default_name}"
    try:
        output_dir = resolve_path(output_dir, base, "output_dir", must_exist=False)
    except RecipeError as error:
        errors.append(error)
    return attrs.evolve(spec, model=attrs.evolve(spec.model, checkpoint=str(checkpoint)), output_dir=output_dir)


def _training(spec: RecipeFile, path: Path, errors: list[RecipeError], purpose: Purpose) -> TrainingConfig:
    """The training block, bad values reported and replaced by their defaults; without training, only the settings
    an evaluation reads (unknown keys too: one may be a misspelt evaluation setting)."""
    values = {**spec.training, "output_dir": spec.output_dir}
    if not purpose.trains:
        known = {attribute.name for attribute in attrs.fields(TrainingConfig)}
        values = {key: value for key, value in values.items() if key in EVALUATION_SETTINGS or key not in known}
    if (
        "resume_from_checkpoint" in values
        and values["resume_from_checkpoint"] not in (None, "auto")
        and isinstance(values["resume_from_checkpoint"], str)
    ):
        try:
            values["resume_from_checkpoint"] = resolve_path(
                values["resume_from_checkpoint"], path.parent, "training.resume_from_checkpoint", must_exist=True
            )
        except RecipeError as error:
            errors.append(error)
            del values["resume_from_checkpoint"]
    return _build_reporting(TrainingConfig, values, "training", errors) or TrainingConfig(output_dir=spec.output_dir)


def origin_of(origins: Mapping[str, str], path: str) -> str:
    """Where `path` got its value: its own entry, or that of the shorthand or object above it."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in origins:
            return origins[".".join(parts[:end])]
    return "default"
