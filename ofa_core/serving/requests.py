"""What a prediction request may say, checked before it reaches the model.

The served tasks and their request fields come from the registry; a request (JSON or a multipart form)
becomes a `PredictRequest` or an `ApiError` with the HTTP status and a one-line message. Images are
decoded here, one request at a time, so a bad image never fails a batch. No torch and no FastAPI.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import io
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import attrs
import orjson
from PIL import Image, UnidentifiedImageError

from ofa_core._errors import OFAError
from ofa_core.plugin import PromptTemplate, TaskSpec
from ofa_core.plugin._specs import PATH_METADATA

RESERVED = ("task", "image", "id", "lang", "options", "generation")
"""Request names every task accepts; a task's prompt fields come on top."""

KINDS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal",
    503: "overloaded",
    504: "timeout",
}
"""HTTP status -> the `kind` label of the `ofa_errors_total` metric."""

# Generation settings whose request value is capped by an operator flag: key -> (limit attribute, flag).
TOKEN_LIMITED = ("max_new_tokens", "max_length", "min_new_tokens", "min_length")
BEAM_LIMITED = ("num_beams", "num_beam_groups")
_INTEGER_SETTINGS = {*TOKEN_LIMITED, *BEAM_LIMITED, "top_k", "no_repeat_ngram_size", "num_return_sequences"}
_NUMBER_SETTINGS = {
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "length_penalty",
    "repetition_penalty",
    "diversity_penalty",
    "epsilon_cutoff",
    "eta_cutoff",
    "encoder_repetition_penalty",
}


class ApiError(Exception):
    """An answer other than 200: HTTP status, one-line message, optional headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, one_line(message), dict(headers or {})

    @property
    def kind(self) -> str:
        return KINDS.get(self.status, f"http_{self.status}")


def one_line(message: object, limit: int = 300) -> str:
    """The first line of a message, at most `limit` characters: error answers never carry tracebacks."""
    lines = str(message).strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- the served tasks ---------------------------------------------------------------------------------------


def prompt_fields(source: str) -> list[str]:
    """Field names a `str.format` template uses, in order ('{question_en}' -> ['question_en'])."""
    names = []
    for _, name, _, _ in string.Formatter().parse(source):
        if name:
            names.append(name.split(".")[0].split("[")[0])
    return list(dict.fromkeys(names))


def task_fields(prompts: Iterable[PromptTemplate]) -> tuple[str, ...]:
    """The request fields of a task: the fields its prompts name, less those its preprocess derives from another
    one by a suffix (vqa's English prompt uses `question_en`, which preprocess makes from `question`)."""
    names = list(dict.fromkeys(name for prompt in prompts for name in prompt_fields(prompt.source)))
    return tuple(name for name in names if not any(name != other and name.startswith(other + "_") for other in names))


@dataclass(frozen=True)
class ServedTask:
    """A task as the server offers it: its spec, prompts by language and request fields."""

    name: str
    spec: TaskSpec
    prompts: dict[str, PromptTemplate]
    fields: tuple[str, ...]

    @property
    def languages(self) -> list[str]:
        return list(self.prompts)

    def path_options(self) -> set[str]:
        """Options naming a file: a request may not set them (they would read the server's disk)."""
        if self.spec.options is None:
            return set()
        return {a.name for a in attrs.fields(self.spec.options) if PATH_METADATA in a.metadata}

    def option_defaults(self) -> dict[str, Any]:
        """Options a request may set -> their default (None when required or built by a factory)."""
        if self.spec.options is None:
            return {}
        defaults = {}
        for attribute in attrs.fields(self.spec.options):
            if PATH_METADATA in attribute.metadata or not attribute.init:
                continue
            default = attribute.default
            if default is attrs.NOTHING or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = None
            defaults[attribute.name] = list(default) if isinstance(default, tuple) else default
        return defaults

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.spec.description,
            "languages": self.languages,
            "fields": list(self.fields),
            "options": self.option_defaults(),
            "closed_set": self.spec.closed_set is not None,
        }


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def served_tasks(registry: Any, names: Iterable[str] | None = None) -> dict[str, ServedTask]:
    """The tasks to serve: `names` (each must be registered), or every registered task the server can run.

    A task whose prompts need a decoder prefix cannot be served yet (as with `ofa predict`): naming one is an
    error; without names it is left out.
    """
    wanted = list(dict.fromkeys(names or []))
    known = registry.tasks.names()
    for name in wanted:
        if name not in known:
            raise OFAError(f"--task {name}: no such task{did_you_mean(name, known)}; see 'ofa tasks'")
    tasks = {}
    for name in wanted or sorted(known):
        spec = registry.tasks.get(name)
        prompts = {lang: registry.prompts.get(prompt) for lang, prompt in spec.prompts.items()}
        if any(prompt.decoder_prefix for prompt in prompts.values()):
            if wanted:
                raise OFAError(f"--task {name}: its prompts have a decoder_prefix, which serving does not support yet")
            continue
        tasks[name] = ServedTask(name, spec, prompts, task_fields(prompts.values()))
    if not tasks:
        raise OFAError("no task to serve; install a task plugin or name one with --task")
    return tasks


# ---- a prediction request ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Operator limits a request must stay within (the `serve` flags of the same names)."""

    max_pixels: int = 40_000_000
    max_new_tokens: int = 64
    max_beams: int = 8


@dataclass(frozen=True)
class PredictRequest:
    task: ServedTask
    image: bytes
    id: str | None
    lang: str
    options: dict = field(default_factory=dict)
    generation: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)

    def key(self) -> tuple:
        """Requests with equal keys can share one forward pass (and one Predictor)."""
        dump = lambda value: orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()  # noqa: E731
        return (self.task.name, self.lang, dump(self.options), dump(self.generation))


def _json_object(value: Any, name: str) -> dict:
    """A JSON object given as an object (JSON body) or as a JSON string (form field)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value) if value.strip() else {}
        except orjson.JSONDecodeError as error:
            raise ApiError(400, f"{name}: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"{name}: expected a JSON object, got {type(value).__name__}")
    return value


def decode_base64(text: str) -> bytes:
    """Standard base64, whitespace ignored, an optional `data:...;base64,` prefix allowed."""
    if text.startswith("data:") and "," in text[:200]:
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(400, f"image: not valid base64 ({error})") from None
    return data


def check_generation(generation: dict, limits: Limits) -> dict:
    for key, value in generation.items():
        if not isinstance(key, str) or not key:
            raise ApiError(400, "generation: setting names must be non-empty text")
        if isinstance(value, (dict, list)):
            raise ApiError(400, f"generation.{key}: expected a number, text or true/false, got {type(value).__name__}")
        if key in _INTEGER_SETTINGS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ApiError(400, f"generation.{key}: expected a whole number >= 0, got {value!r:.40}")
        if key in _NUMBER_SETTINGS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ApiError(400, f"generation.{key}: expected a number, got {value!r:.40}")
        if key in TOKEN_LIMITED and value > limits.max_new_tokens:
            raise ApiError(
                400,
                f"generation.{key} {value} is over this server's limit of {limits.max_new_tokens} (--max-new-tokens)",
            )
        if key in BEAM_LIMITED and value > limits.max_beams:
            raise ApiError(
                400, f"generation.{key} {value} is over this server's limit of {limits.max_beams} (--max-beams)"
            )
        if key == "num_return_sequences" and value != 1:
            raise ApiError(400, "generation.num_return_sequences: the server returns one answer per request; use 1")
    return generation


def _served_task(values: Mapping[str, Any], tasks: Mapping[str, ServedTask]) -> ServedTask:
    """The served task the request's `task` names (422 when absent, 404 when not served here)."""
    if values.get("task") is None:
        raise ApiError(422, f"missing field 'task'; one of: {', '.join(tasks)}")
    name = values["task"]
    if not isinstance(name, str):
        raise ApiError(400, f"task: expected text, got {type(name).__name__}")
    if name not in tasks:
        raise ApiError(
            404,
            f"task '{one_line(name, 60)}' is not served here{did_you_mean(name, tasks)}; "
            f"served: {', '.join(tasks)} (GET /v1/tasks)",
        )
    return tasks[name]


def _check_fields(values: Mapping[str, Any], task: ServedTask, name: str) -> None:
    """Only the task's fields and the reserved ones; the image and every task field present, the fields as text."""
    accepted = (*RESERVED, *task.fields)
    unknown = [key for key in values if key not in accepted]
    if unknown:
        shown = ", ".join(f"'{one_line(key, 40)}'" for key in unknown[:5])
        raise ApiError(
            422,
            f"unknown field{'s' if len(unknown) > 1 else ''} {shown} for task '{name}'"
            f"{did_you_mean(str(unknown[0]), accepted)}; accepted: {', '.join(accepted)}",
        )
    missing = [key for key in ("image", *task.fields) if values.get(key) is None]
    if missing:
        raise ApiError(
            422,
            f"missing field{'s' if len(missing) > 1 else ''} {', '.join(repr(k) for k in missing)} for task '{name}'",
        )
    for key in task.fields:
        if not isinstance(values[key], str) or not values[key].strip():
            raise ApiError(400, f"{key}: expected non-empty text")


def _image_bytes(image: Any) -> bytes:
    """The uploaded image's bytes: a form's file, or a JSON body's base64 text."""
    if isinstance(image, str):
        image = decode_base64(image)
    elif not isinstance(image, (bytes, bytearray)):
        raise ApiError(400, f"image: expected a base64 string, got {type(image).__name__}")
    if not image:
        raise ApiError(400, "image: empty")
    return bytes(image)


def parse_predict(values: Mapping[str, Any], tasks: Mapping[str, ServedTask], limits: Limits) -> PredictRequest:
    """A request's names and values (JSON object or form) -> a checked `PredictRequest` (the image still encoded)."""
    task = _served_task(values, tasks)
    name = values["task"]
    _check_fields(values, task, name)
    request_id = values.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (str, int))):
        raise ApiError(400, f"id: expected text, got {type(request_id).__name__}")
    lang = values.get("lang") or task.languages[0]
    if not isinstance(lang, str) or lang not in task.prompts:
        raise ApiError(400, f"lang {one_line(lang, 20)!r}: task '{name}' has prompts for {', '.join(task.languages)}")
    options = _json_object(values.get("options"), "options")
    forbidden = sorted(set(options) & task.path_options())
    if forbidden:
        raise ApiError(
            400,
            f"options.{forbidden[0]}: a request cannot name files on the server; give the values "
            f"inline (e.g. labels or answers as a list)",
        )
    generation = check_generation(_json_object(values.get("generation"), "generation"), limits)
    image = _image_bytes(values["image"])
    return PredictRequest(
        task=task,
        image=image,
        id=None if request_id is None else str(request_id),
        lang=lang,
        options=options,
        generation=generation,
        fields={key: values[key] for key in task.fields},
    )


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode an uploaded image fully (RGB), refusing it before decoding when width*height is over `max_pixels`.

    Any failure becomes an `ApiError`: 413 for too many pixels, 400 for anything undecodable.
    """
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
    except Image.DecompressionBombError as error:
        raise ApiError(
            413, f"image: too many pixels ({one_line(error, 120)}); the limit is {max_pixels} (--max-pixels)"
        ) from None
    except UnidentifiedImageError:
        raise ApiError(400, f"image: not in a known image format ({len(data)} bytes)") from None
    except Exception as error:
        raise ApiError(400, f"image: could not be read ({type(error).__name__}: {one_line(error, 120)})") from None
    if width * height > max_pixels:
        raise ApiError(
            413, f"image: {width}x{height} pixels is over this server's limit of {max_pixels} pixels (--max-pixels)"
        )
    if width <= 0 or height <= 0:
        raise ApiError(400, f"image: {width}x{height} has no pixels")
    try:
        image.verify()  # structural checks (e.g. PNG checksums) without decoding
        image = Image.open(io.BytesIO(data))
        image.load()  # a truncated file fails here
        return image if image.mode == "RGB" else image.convert("RGB")
    except Image.DecompressionBombError as error:
        raise ApiError(413, f"image: too many pixels ({one_line(error, 120)})") from None
    except Exception as error:
        raise ApiError(400, f"image: could not be decoded ({type(error).__name__}: {one_line(error, 120)})") from None
