"""Recipes: JSON files that pick model, task, data and training, validated before any compute.

Loading is in three steps, each failing with one line that names the file and the JSON path:
1. read the file and its `extends` parents (deep-merged: objects merge, other values replace),
   apply `--set a.b=value` overrides, and remember where every value came from;
2. type-check the merged JSON into the attrs classes below (`training` against the trainer's
   `TrainingConfig`) and resolve relative paths against the recipe's folder;
3. `resolve(recipe, registry)`: look up the task and its components in the registry and build
   each component's options, so unknown names and bad options fail before the model loads.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core.cache import CACHE_VARIABLE, cache_dir
from ofa_core.errors import OFAError
from ofa_core.recipe_schema import RecipeError, build, object_schema, schema_of
from ofa_core.registry import Registry
from ofa_core.specs import PATH_METADATA, ClosedSet, LossSpec, MetricSpec, PromptTemplate, ReaderSpec, TaskSpec

SCHEMA_ID = "https://ofa-framework.invalid/schemas/recipe-v1.json"


@attrs.frozen
class Component:
    """A reference to a registered component: `"name"` or `{"name": ..., **options}`.

    The options are those of the component's options class. `ofa tasks --all` lists the registered
    names; `ofa recipe show RECIPE` lists every option of the components a recipe uses, defaults included.
    """

    name: str
    options: dict = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, value: Any, path: str) -> Component:
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise RecipeError(f'{path}: expected a name or an object with a "name" key, got {orjson.dumps(value).decode()[:40]}')
        options = {k: v for k, v in value.items() if k != "name"}
        return cls(value["name"], options)

    @staticmethod
    def json_schema() -> dict:
        return {"anyOf": [{"type": "string"}, {"type": "object", "required": ["name"],
                                                "properties": {"name": {"type": "string"}}, "additionalProperties": True}]}


@attrs.frozen
class ModelSection:
    """Which weights to start from."""

    checkpoint: str = attrs.field(metadata={PATH_METADATA: {"must_exist": True},
                                            "help": "model directory (from `ofa convert` or save_pretrained), or a run directory: its best "
                                                    "checkpoint, else its newest. Relative to the recipe; `~` and `$VARIABLES` "
                                                    "are expanded ($OFA_CACHE_DIR defaults to ~/.cache/ofa)"})
    overrides: dict = attrs.field(factory=dict, metadata={"help": "config overrides passed to from_pretrained, e.g. dropout"})


@attrs.frozen
class TaskSection:
    """The task and its prompt language; `task: "name"` is short for `{"name": "name"}`."""

    SHORTHAND = "name"
    name: str = attrs.field(metadata={"help": "a registered task (see `ofa tasks`)"})
    lang: str | None = attrs.field(default=None, metadata={"help": "language of the prompt; default: the task's first"})
    prompt: str | None = attrs.field(default=None, metadata={"help": "registered prompt template replacing the task's"})
    options: dict = attrs.field(factory=dict, metadata={"help": "options of the task's options class"})


@attrs.frozen
class DataSection:
    """Where records come from and how long their token sequences may be."""

    reader: Component | None = attrs.field(default=None, metadata={"help": "reader name or {name, ...options}; default: the task's"})
    max_source_length: int = attrs.field(default=80, metadata={"help": "encoder tokens per sample, BOS and EOS included; longer prompts are cut"})
    max_target_length: int = attrs.field(default=32, metadata={"help": "target tokens per sample, EOS excluded; longer targets are cut"})
    num_workers: int = attrs.field(default=0, metadata={"help": "DataLoader worker processes; when > 0, replaces training.dataloader_num_workers"})


@attrs.frozen
class PluginsSection:
    """Extra plugin modules this recipe needs."""

    load: list[str] = attrs.field(factory=list, metadata={"help": "module names or paths relative to the recipe"})


@attrs.frozen
class RecipeFile:
    """A recipe: the model, task, data, loss, metrics, generation and training of one run."""

    JSON_NAMES = {"$schema": "schema"}
    task: TaskSection
    model: ModelSection
    schema: str | None = attrs.field(default=None, metadata={"help": "path or URL of recipe.schema.json, for editors; ignored when loading"})
    name: str | None = attrs.field(default=None, metadata={"help": "run name; the default output_dir is runs/<name>"})
    description: str | None = attrs.field(default=None, metadata={"help": "free text for the people reading the recipe"})
    setup: str | None = attrs.field(default=None, metadata={
        "help": "how to get the weights and data the recipe needs (downloads, conversion, where to put them); "
                "printed with the error when a path it names is missing"})
    extends: str | list[str] | None = attrs.field(default=None, metadata={"help": "parent recipe(s), relative to this file"})
    plugins: PluginsSection = attrs.field(factory=PluginsSection)
    data: DataSection = attrs.field(factory=DataSection)
    loss: Component | None = attrs.field(default=None, metadata={"help": "loss name or {name, ...options}; default: the task's"})
    metrics: list[Component] | None = attrs.field(default=None, metadata={"help": "metric names or {name, ...options}; default: the task's"})
    generation: str | dict | None = attrs.field(default=None, metadata={"help": "an official search name or GenerationConfig kwargs"})
    training: dict = attrs.field(factory=dict, metadata={
        "help": "transformers TrainingArguments names (ofa_core/trainer/config.py); a key described nowhere here means what it means there"})
    output_dir: str | None = attrs.field(default=None, metadata={"help": "run directory, relative to the recipe; default runs/<name>"})


@attrs.frozen
class Recipe:
    """A loaded, type-checked recipe: paths are absolute, `training` is a TrainingConfig."""

    path: Path
    spec: RecipeFile
    training: Any
    """`ofa_core.trainer.config.TrainingConfig` (or the raw dict while the trainer is not installed)."""
    origins: dict[str, str]
    """JSON path -> where its value came from: 'parent <file>', 'this file', '--set' (absent: default)."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def error(self, message: str) -> OFAError:
        """An error for this recipe: `<file>: <message>`."""
        return OFAError(f"{self.path}: {message}")

    def missing(self, message: str) -> OFAError:
        """An error for a weights or data path that is not there yet, with the recipe's `setup` instructions."""
        return self.error(with_setup(message, self.spec.setup))


class MissingPathError(RecipeError):
    """A path the recipe needs does not exist (yet)."""


def with_setup(message: str, setup: str | None) -> str:
    return f"{message}. To set up this recipe: {setup}" if setup else message


@attrs.frozen
class Resolved:
    """A recipe's components looked up in the registry, each with its options built."""

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


def closed_set_of(task: TaskSpec, options: Any, prompt: PromptTemplate) -> ClosedSet | None:
    """The task's closed set for these options; answers are scored right after BOS, so no decoder prefix."""
    closed_set = task.closed_set(options) if task.closed_set is not None else None
    if closed_set is not None and prompt.decoder_prefix:
        raise OFAError(f"prompt '{prompt.name}' has a decoder_prefix, which closed-set decoding does not support; "
                       f"use a prompt without one or drop the task's answer set")
    return closed_set


# ---- step 1: files, extends, --set -------------------------------------------------------------

def read_json(path: Path, what: str = "recipe") -> dict:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise OFAError(f"{path}: {what} not found; check the path (relative paths are relative to the recipe that names them)") from None
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


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
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
    for path in _flatten(layer):
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


# ---- step 2: types and paths -------------------------------------------------------------------

def training_config_class() -> type | None:
    """The trainer's TrainingConfig, or None while `ofa_core.trainer` is not available."""
    try:
        return importlib.import_module("ofa_core.trainer.config").TrainingConfig
    except ImportError:
        return None


def load(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, merge, override and type-check a recipe; every error is one line naming file and field."""
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
        field = str(error).split(":", 1)[0]
        origin = next((o for p, o in origins.items() if p == field or p.startswith(field + ".")), None) or origin_of(origins, field)
        where = f" (value from {origin})" if origin not in (None, "this file", "default") else ""
        setup = merged.get("setup") if isinstance(error, MissingPathError) else None
        return OFAError(f"{path}: {with_setup(f'{error}{where}', setup)}")

    try:
        spec = build(RecipeFile, merged, "")
        spec = _resolve_paths(spec, path.parent)
        training = _training(spec, path)
    except RecipeError as error:
        raise fail(error) from None
    return Recipe(path, spec, training, origins)


def _resolve_paths(spec: RecipeFile, base: Path) -> RecipeFile:
    checkpoint = resolve_path(spec.model.checkpoint, base, "model.checkpoint", must_exist=True)
    output_dir = spec.output_dir or spec.training.get("output_dir") or f"runs/{spec.name or spec.task.name}"
    if not isinstance(output_dir, str):
        raise RecipeError(f"training.output_dir: expected string, got {output_dir!r}")
    return attrs.evolve(spec, model=attrs.evolve(spec.model, checkpoint=checkpoint),
                        output_dir=resolve_path(output_dir, base, "output_dir", must_exist=False))


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand_variables(value: str, field: str) -> str:
    """`$NAME` / `${NAME}` from the environment; `$OFA_CACHE_DIR` defaults to ~/.cache/ofa (`ofa_core.cache`)."""
    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name == CACHE_VARIABLE:
            return str(cache_dir())
        if name not in os.environ:
            raise RecipeError(f"{field}: environment variable ${name} in {value!r} is not set; set it or write the path out")
        return os.environ[name]
    return _VARIABLE.sub(replace, value)


def resolve_path(value: str, base: Path, field: str, *, must_exist: bool) -> str:
    """`value` (with `~` and `$VARIABLES` expanded) relative to the recipe folder; a missing required file is
    an error naming the field. Paths inside the demo folder are generated on first use."""
    resolved = (base / Path(expand_variables(value, field)).expanduser()).resolve()
    if must_exist and not resolved.exists():
        from ofa_core.demo import create_on_first_use

        create_on_first_use(resolved)
        if not resolved.exists():
            raise MissingPathError(f"{field}: {resolved} not found (relative paths are resolved against {base})")
    return str(resolved)


def _training(spec: RecipeFile, path: Path) -> Any:
    values = {**spec.training, "output_dir": spec.output_dir}
    config_class = training_config_class()
    if config_class is None:
        return values
    if "resume_from_checkpoint" in values and values["resume_from_checkpoint"] not in (None, "auto") \
            and isinstance(values["resume_from_checkpoint"], str):
        values["resume_from_checkpoint"] = resolve_path(values["resume_from_checkpoint"], path.parent,
                                                        "training.resume_from_checkpoint", must_exist=True)
    return build(config_class, values, "training")


# ---- step 3: components ------------------------------------------------------------------------

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
    """Look up every component the recipe names and build its options; errors name file and field."""
    spec, base = recipe.spec, recipe.base_dir

    def lookup(namespace, name: str, field: str):
        if name not in namespace:
            raise recipe.error(f"{field}: {namespace.unknown_message(name)}")
        return namespace.get(name)

    try:
        task = lookup(registry.tasks, spec.task.name, "task.name")
        lang = spec.task.lang or next(iter(task.prompts), None)
        if spec.task.prompt is not None:
            prompt_name = spec.task.prompt
        elif lang in task.prompts:
            prompt_name = task.prompts[lang]
        else:
            close = difflib.get_close_matches(str(lang), list(task.prompts), n=1)
            hint = f"did you mean '{close[0]}'?; " if close else ""
            raise recipe.error(f"task.lang: task '{spec.task.name}' has no '{lang}' prompt ({hint}languages: {', '.join(task.prompts)})")
        prompt = lookup(registry.prompts, prompt_name, "task.prompt")
        reader_ref = spec.data.reader or Component(task.reader)
        reader = lookup(registry.readers, reader_ref.name, "data.reader")
        loss_ref = spec.loss or Component(task.loss)
        loss = lookup(registry.losses, loss_ref.name, "loss")
        metric_refs = spec.metrics if spec.metrics is not None else [Component(m) for m in task.metrics]
        metrics = []
        for i, ref in enumerate(metric_refs):
            metric = lookup(registry.metrics, ref.name, f"metrics[{i}]")
            metrics.append((ref.name, metric, build_options(metric.options, ref.options, f"metrics[{i}]", base)))
        task_options = build_options(task.options, spec.task.options, "task.options", base)
        return Resolved(
            task_name=spec.task.name, task=task,
            task_options=task_options,
            prompt=prompt, reader=reader,
            reader_options=build_options(reader.options, reader_ref.options, "data.reader", base),
            loss=loss, loss_options=build_options(loss.options, loss_ref.options, "loss", base),
            metrics=tuple(metrics),
            generation=_generation(spec.generation if spec.generation is not None else task_search(task, prompt)),
            closed_set=closed_set_of(task, task_options, prompt),
        )
    except MissingPathError as error:
        raise recipe.missing(str(error)) from None
    except RecipeError as error:
        raise recipe.error(str(error)) from None


def task_search(task: TaskSpec, prompt: PromptTemplate) -> str | dict:
    """The task's default search, in its prompt language's official variant where one exists."""
    from ofa_core.generation.defaults import search_for_language

    return search_for_language(task.generation, prompt.lang) if isinstance(task.generation, str) else task.generation


def _generation(value: str | dict) -> str | dict:
    from ofa_core.generation import OFFICIAL_SEARCH

    if isinstance(value, str) and value not in OFFICIAL_SEARCH:
        close = difflib.get_close_matches(value, sorted(OFFICIAL_SEARCH), n=1)
        hint = f"did you mean '{close[0]}'?; " if close else ""
        raise RecipeError(f"generation: unknown official search '{value}' ({hint}known: {', '.join(sorted(OFFICIAL_SEARCH))})")
    return value


# ---- show and schema ---------------------------------------------------------------------------

def resolved_values(recipe: Recipe, resolved: Resolved | None = None) -> dict[str, tuple[Any, str]]:
    """Every leaf of the resolved recipe with where it came from (default, a file, --set).

    With `resolved`, components show what will actually run: the task's defaults where the recipe
    names none, and every option of each component (defaults included, paths made absolute).
    """
    spec = attrs.asdict(recipe.spec, recurse=True)
    spec.pop("schema", None)
    spec.pop("extends", None)
    training = recipe.training if isinstance(recipe.training, dict) else attrs.asdict(recipe.training)
    spec["training"] = training
    out = {}
    for path, value in _flatten(spec).items():
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


def origin_of(origins: Mapping[str, str], path: str) -> str:
    """Where `path` got its value: its own entry, or that of the shorthand or object above it."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in origins:
            return origins[".".join(parts[:end])]
    return "default"


def json_schema() -> dict:
    """JSON Schema of recipe files (with the trainer's `training` keys when the trainer is installed)."""
    definitions: dict[str, dict] = {}
    top = object_schema(RecipeFile, definitions)
    config_class = training_config_class()
    if config_class is not None:
        written = top["properties"]["training"]  # the RecipeFile field's description and default
        top["properties"]["training"] = {**schema_of(config_class, definitions),
                                         **{key: written[key] for key in ("description", "default")}}
        training = definitions[config_class.__name__]
        training.pop("required", None)  # output_dir may come from the top level
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "ofa recipe", **top, "$defs": definitions}

