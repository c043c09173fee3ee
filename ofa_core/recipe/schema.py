"""JSON values into attrs classes, type-checked field by field, and the JSON Schema of those classes.

One description (the attrs classes, their type hints, defaults and docstrings) drives validation,
the exported schema and the reference docs rendered from it, so they cannot disagree. Errors carry
the JSON path of the bad value; `recipe.py` prefixes the file name.
"""

from __future__ import annotations

import ast
import difflib
import functools
import inspect
import re
import textwrap
import types
import typing
from typing import Any

import attrs
import orjson

from ofa_core._errors import OFAError


class RecipeError(OFAError):
    """A recipe value that is unknown, of the wrong type or otherwise invalid; names its JSON path."""

    @property
    def field(self) -> str:
        """The JSON path the message starts with."""
        return str(self).split(":", 1)[0]


class RecipeErrors(RecipeError):
    """Several bad values of one object, each its own `RecipeError`: a user fixes them all in one go."""

    def __init__(self, errors: list[RecipeError]) -> None:
        flat = [single for error in errors for single in errors_of(error)]
        super().__init__("; ".join(map(str, flat)))
        self.errors = tuple(flat)


def errors_of(error: RecipeError) -> tuple[RecipeError, ...]:
    """The single errors inside `error`."""
    return error.errors if isinstance(error, RecipeErrors) else (error,)


def one_or_all(errors: list[RecipeError]) -> RecipeError:
    return errors[0] if len(errors) == 1 else RecipeErrors(errors)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_name(a) for a in typing.get_args(hint)))
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin in (list, tuple) or hint in (list, tuple):
        return "list"
    if origin is dict or hint is dict or attrs.has(hint if isinstance(hint, type) else type(None)):
        return "object"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _json_name(value: Any) -> str:
    return {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        list: "list",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def field_hints(cls: type) -> dict[str, Any]:
    """Resolved type hints of an attrs class's fields."""
    return typing.get_type_hints(cls)


def json_hint(field: attrs.Attribute, hint: Any) -> Any:
    """What a recipe may write for `field`: its converter's input type when the converter declares one.

    A field stored as a tuple may accept a single string too (`report_to: "tensorboard"`); the
    converter's annotation says so, and the schema must accept what loading accepts.
    """
    converter = field.converter
    if not inspect.isfunction(converter):
        return hint
    parameters = list(inspect.signature(converter).parameters)
    return typing.get_type_hints(converter).get(parameters[0], hint) if parameters else hint


@functools.cache
def field_docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal after a field), which Python itself discards."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not attrs.has(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # defined where there is no source (a REPL, a generated class)
            continue
        body = ast.parse(source).body[0].body
        for node, following in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def convert(value: Any, hint: Any, path: str) -> Any:
    """`value` checked against `hint` (attrs classes recursively); raises RecipeError naming `path`."""
    if hint is Any or hint is typing.Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return convert(value, option, path)
            except RecipeError as error:
                errors.append(error)
        # A single non-null alternative explains itself better than a generic message.
        real = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(real) == 1 and value is not None:
            raise errors[[a for a in typing.get_args(hint)].index(real[0])]
        raise RecipeError(f"{path}: expected {_type_name(hint)}, got {_json_name(value)} {_short(value)}")
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in typing.get_args(hint)], n=1)
        hint_text = f" (did you mean '{close[0]}'?)" if close else ""
        raise RecipeError(
            f"{path}: {_short(value)} is not one of {', '.join(map(repr, typing.get_args(hint)))}{hint_text}"
        )
    if hint is type(None) or hint is None:
        if value is None:
            return None
        raise _wrong(path, hint, value)
    if isinstance(hint, type) and attrs.has(hint):
        return build(hint, value, path)
    if hint in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, list):
            raise _wrong(path, hint, value)
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [convert(v, item, _join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if (hint is tuple or origin is tuple) else items
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _wrong(path, hint, value)
        args = typing.get_args(hint)
        return {k: convert(v, args[1], _join(path, k)) for k, v in value.items()} if args else dict(value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _wrong(path, hint, value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _wrong(path, hint, value)
    if hint in (str, bool):
        if type(value) is hint:
            return value
        raise _wrong(path, hint, value)
    return value  # a type JSON cannot express: the class's own validators judge it


def build(cls: type, value: Any, path: str) -> Any:
    """An instance of attrs class `cls` from a JSON object; unknown keys get a did-you-mean."""
    if hasattr(cls, "from_json"):
        return cls.from_json(value, path)
    shorthand = getattr(cls, "SHORTHAND", None)
    if isinstance(value, str) and shorthand:
        value = {shorthand: value}
    if not isinstance(value, dict):
        raise _wrong(path, cls, value)
    fields = {f.name: f for f in attrs.fields(cls)}
    aliases = getattr(cls, "JSON_NAMES", {})  # json key -> field name, for keys like "$schema"
    hints = field_hints(cls)
    kwargs, keys, errors = {}, {}, []
    for key, item in value.items():
        name = aliases.get(key, key)
        if name not in fields or name.startswith("_"):
            known = [k for k in list(aliases) + list(fields) if k not in aliases.values() and not k.startswith("_")]
            close = difflib.get_close_matches(key, known, n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else f"known keys: {', '.join(known)}"
                if known
                else "this component takes no options"
            )
            errors.append(RecipeError(f"{_join(path, key)}: unknown key ({hint})"))
            continue
        accepted = json_hint(fields[name], hints[name])
        try:
            kwargs[name] = convert(item, accepted, _join(path, key))
        except RecipeError as error:
            if fields[name].converter is None or accepted is not hints[name]:  # a typed converter said no
                errors.append(error)
                continue
            try:
                kwargs[name] = _converted(fields[name], item, _join(path, key))
            except RecipeError as converter_error:
                errors.append(converter_error)
                continue
        keys[name] = key
    given = {aliases.get(key, key) for key in value}
    for name, field in fields.items():
        if name not in given and field.default is attrs.NOTHING:
            errors.append(RecipeError(f"{_join(path, name)}: missing required key ({_type_name(hints[name])})"))
    if errors:
        raise one_or_all(errors)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        found = _validator_errors(cls, kwargs, keys, path)
        if found:
            raise one_or_all(found) from error
        # attrs validators name their field in the message; point the JSON path at it.
        named = [name for name in kwargs if re.search(rf"\b{re.escape(name)}\b", str(error))]
        where = _join(path, max(named, key=len)) if named else (path or cls.__name__)
        raise RecipeError(f"{where}: {error}") from error


def _validator_errors(cls: type, kwargs: dict[str, Any], keys: dict[str, str], path: str) -> list[RecipeError]:
    """Every field whose own validator rejects its value: attrs stops at the first, a recipe author wants all.

    Validators that look at other fields (the instance) cannot be run alone and are left to the class."""
    errors = []
    for field in attrs.fields(cls):
        if field.name not in kwargs or field.validator is None:
            continue
        value = kwargs[field.name]
        try:
            field.validator(None, field, field.converter(value) if field.converter else value)
        except (TypeError, ValueError) as error:
            errors.append(RecipeError(f"{_join(path, keys[field.name])}: {error}"))
        except AttributeError:
            continue
    return errors


def _converted(field: attrs.Attribute, value: Any, path: str) -> Any:
    """A field with its own converter accepts more than its type hint (e.g. a string for a list): let it try."""
    try:
        field.converter(value)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"{path}: {error}") from None
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong(path: str, hint: Any, value: Any) -> RecipeError:
    return RecipeError(f"{path}: expected {_type_name(hint)}, got {_json_name(value)} {_short(value)}")


def schema_of(hint: Any, definitions: dict[str, dict]) -> dict:
    """JSON Schema for a type hint; attrs classes go into `definitions` once each."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        options: list[dict] = []
        for option in (schema_of(a, definitions) for a in typing.get_args(hint)):
            if option not in options:  # list[str] and tuple[str, ...] are both a JSON array of strings
                options.append(option)
        return {"anyOf": options} if len(options) > 1 else options[0]
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    if hint is type(None) or hint is None:
        return {"type": "null"}
    if isinstance(hint, type) and attrs.has(hint):
        if hint.__name__ not in definitions:
            definitions[hint.__name__] = {}  # placeholder against recursion
            if hasattr(hint, "json_schema"):
                definitions[hint.__name__] = {**_described(hint), **hint.json_schema()}
            else:
                definitions[hint.__name__] = object_schema(hint, definitions)
        reference = {"$ref": f"#/$defs/{hint.__name__}"}
        if getattr(hint, "SHORTHAND", None):
            return {"anyOf": [{"type": "string"}, reference]}
        return reference
    if hint in (list, tuple) or origin in (list, tuple):
        args = typing.get_args(hint)
        return {"type": "array", "items": schema_of(args[0], definitions)} if args else {"type": "array"}
    if hint is dict or origin is dict:
        return {"type": "object"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return {"type": simple[hint]} if hint in simple else {}


def object_schema(cls: type, definitions: dict[str, dict]) -> dict:
    """Schema of one attrs class: its fields with their descriptions, defaults and allowed values,
    required keys, and no others (unless it says so)."""
    hints = field_hints(cls)
    docs = field_docstrings(cls)
    aliases = {field: key for key, field in getattr(cls, "JSON_NAMES", {}).items()}
    properties, required = {}, []
    for field in attrs.fields(cls):
        if field.name.startswith("_"):
            continue
        key = aliases.get(field.name, field.name)
        properties[key] = prop = schema_of(json_hint(field, hints[field.name]), definitions)
        description = field.metadata.get("help") or docs.get(field.name)
        if description:
            prop["description"] = description
        allowed = getattr(field.validator, "options", None)  # attrs.validators.in_
        if isinstance(allowed, (tuple, list)) and "enum" not in prop:
            prop["enum"] = list(allowed)
        if field.default is attrs.NOTHING:
            required.append(key)
        else:
            prop.update(_default(field.default))
    schema = {
        **_described(cls),
        "type": "object",
        "properties": properties,
        "additionalProperties": bool(getattr(cls, "OPEN", False)),
    }
    if required:
        schema["required"] = required
    return schema


def _described(cls: type) -> dict:
    """`{"description": <the class docstring>}`, or nothing for a class without one."""
    return {"description": inspect.cleandoc(cls.__doc__)} if cls.__doc__ else {}


def _default(default: Any) -> dict:
    """`{"default": <JSON value>}` for a field default (factories called), or nothing if JSON cannot hold it."""
    if isinstance(default, attrs.Factory):
        if default.takes_self:
            return {}
        default = default.factory()
    if attrs.has(type(default)):
        default = attrs.asdict(default)
    try:
        return {"default": orjson.loads(orjson.dumps(default))}
    except TypeError:
        return {}
