"""The recipe reference (docs/recipe-reference.md) as Markdown rendered from the recipe JSON Schema.

The schema is built from the recipe's attrs classes (types, defaults, allowed values, docstrings),
so a page rendered from it says exactly what `ofa recipe validate` accepts. `ofa recipe docs`
prints it; a test fails when the committed page differs.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ofa_core.recipe.schema import object_schema, schema_of
from ofa_core.recipe.sections import RecipeFile
from ofa_core.recipe.training import TrainingConfig

SCHEMA_ID = "https://ofa-framework.invalid/schemas/recipe-v1.json"
COMMAND = "python -m ofa_core recipe docs > docs/recipe-reference.md"

INTRO = """\
A recipe is one JSON file. `ofa recipe validate RECIPE` checks it (keys, types, files, plugins,
component names and options) before any compute; `ofa recipe show RECIPE` prints every resolved
value and where it came from. On the command line, `--set training.learning_rate=1e-4` overrides
one value (parsed as JSON, else taken as a string).

`extends` names parent recipes, relative to the file that names them: objects merge key by key,
other values replace. Relative paths in the merged recipe (the model, data files, `output_dir`)
are resolved against the folder of the recipe given on the command line.

In the tables, *required* keys have no default; a key may also be left out to take its default."""


def render(schema: dict) -> str:
    """The whole reference page for `schema` (what `ofa_core.recipe.json_schema()` returns)."""
    definitions = schema.get("$defs", {})
    lines = [
        "# Recipe reference",
        "",
        f"<!-- generated from the recipe JSON Schema by `{COMMAND}`; do not edit by hand -->",
        "",
        INTRO,
        "",
    ]
    lines += _section("Top level", schema.get("description", ""), schema, definitions, "")
    for path, prop, definition in _object_sections(schema, definitions, ""):
        lines += _section(f"`{path}`", _description(prop, {}), definition, definitions, path)
    for name, definition in definitions.items():
        if "properties" not in definition:
            lines += [f"## {name}", "", definition.get("description", ""), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _object_sections(schema: dict, definitions: dict, prefix: str):
    """(path, property schema, definition) for every property that is an object with keys of its own, depth first."""
    for key, prop in schema.get("properties", {}).items():
        definition = _object_definition(prop, definitions)
        if definition is not None:
            path = f"{prefix}{key}"
            yield path, prop, definition
            yield from _object_sections(definition, definitions, f"{path}.")


def _object_definition(prop: dict, definitions: dict) -> dict | None:
    for option in [prop, *prop.get("anyOf", [])]:
        definition = definitions.get(_ref_name(option) or "")
        if definition is not None and "properties" in definition:
            return definition
    return None


def _ref_name(prop: dict) -> str | None:
    reference = prop.get("$ref", "")
    return reference.rsplit("/", 1)[-1] if reference.startswith("#/$defs/") else None


def _section(title: str, lead: str, definition: dict, definitions: dict, path: str) -> list[str]:
    lines = [f"## {title}", ""]
    own = definition.get("description", "") if path else ""
    for text in (lead, own):
        if text:
            lines += [text, ""]
    required = set(definition.get("required", []))
    lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key, prop in definition.get("properties", {}).items():
        full = f"{path}.{key}" if path else key
        if key in required:
            default = "*required*"
        elif "default" in prop:
            default = f"`{_json(prop['default'])}`"
        else:
            default = ""
        cells = [f"`{full}`", _type(prop, definitions, full), default, _description(prop, definitions)]
        lines.append("| " + " | ".join(_cell(text) for text in cells) + " |")
    return lines + [""]


def _type(prop: dict, definitions: dict, path: str) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(f"`{_json(value)}`" for value in prop["enum"])
    name = _ref_name(prop)
    if name is not None:
        if "properties" in definitions.get(name, {}):
            return f"object ([`{path}`](#{_anchor(path)}))"
        return f"[{name.lower()}](#{_anchor(name)})"
    if "anyOf" in prop:
        return " or ".join(dict.fromkeys(_type(option, definitions, path) for option in prop["anyOf"]))
    if prop.get("type") == "array":
        return f"list of {_type(prop['items'], definitions, path)}" if "items" in prop else "list"
    return prop.get("type", "any")


def _description(prop: dict, definitions: dict) -> str:
    """The key's own description, else the first paragraph of the class it refers to."""
    if prop.get("description"):
        return prop["description"]
    for option in [prop, *prop.get("anyOf", [])]:
        definition = definitions.get(_ref_name(option) or "", {})
        if definition.get("description"):
            return definition["description"].split("\n\n")[0]
    return ""


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, `<` outside code spans escaped (`runs/<name>` is no HTML tag)."""
    parts = re.split(r"(`[^`]*`)", " ".join(text.split()).replace("|", "\\|"))
    return "".join(part if part.startswith("`") else part.replace("<", "&lt;") for part in parts)


def json_schema() -> dict:
    """JSON Schema of recipe files, the `training` keys included."""
    definitions: dict[str, dict] = {}
    top = object_schema(RecipeFile, definitions)
    written = top["properties"]["training"]  # the RecipeFile field's description and default
    top["properties"]["training"] = {
        **schema_of(TrainingConfig, definitions),
        **{key: written[key] for key in ("description", "default")},
    }
    definitions[TrainingConfig.__name__].pop("required", None)  # output_dir may come from the top level
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ofa recipe",
        **top,
        "$defs": definitions,
    }
