"""The FastAPI app of `ofa serve`: `POST /v1/predict`, `GET /v1/tasks`, `GET /health`, `GET /metrics`.

One loaded model answers every served task: a `Predictor` per (task, language, options, generation), kept in a
small LRU cache, and the `Batcher` groups requests that can share a forward pass. Every error is JSON
`{"error": "<one line>"}` with a 4xx status for anything the client can fix; tracebacks stay in the server log.
The contract is in docs/serving.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from ofa_core.model.errors import OFAError
from ofa_core.plugin import text_to_box
from ofa_core.recipe import build_options
from ofa_core.serving.batcher import Batcher, QueueFull, RecordDropped
from ofa_core.serving.metrics import Metrics
from ofa_core.serving.requests import (
    ApiError,
    Limits,
    PredictRequest,
    ServedTask,
    one_line,
    open_image,
    parse_predict,
)

log = logging.getLogger("ofa_core.serving")

PredictorFactory = Callable[..., Callable[[list[dict]], list[dict]]]
"""(model, processor, task_spec, prompt, options, generation) -> predictor; `Predictor` by default."""


@dataclass(frozen=True)
class ServeSettings:
    """The operator's knobs (the `ofa serve` flags of the same names)."""

    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_queue: int = 64
    timeout_s: float = 60.0
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_new_tokens: int = 64
    max_beams: int = 8
    cache_size: int = 16

    def check(self) -> ServeSettings:
        for name in ("max_batch", "max_queue", "max_pixels", "max_new_tokens", "max_beams", "cache_size"):
            if getattr(self, name) < 1:
                raise OFAError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        for name in ("timeout_s", "max_upload_mb"):
            if not getattr(self, name) > 0:
                raise OFAError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be more than 0")
        if self.max_wait_ms < 0:
            raise OFAError(f"--max-wait-ms {self.max_wait_ms}: must be 0 or more")
        return self

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def limits(self) -> Limits:
        return Limits(max_pixels=self.max_pixels, max_new_tokens=self.max_new_tokens, max_beams=self.max_beams)


# ---- OpenAPI documentation of the hand-parsed request and of the answers ---------------------------------------


class PredictBody(BaseModel):
    """JSON body of POST /v1/predict; a task's fields (e.g. `question`) come on top, as text."""

    model_config = {"extra": "allow"}
    task: str = Field(description="a served task (GET /v1/tasks)")
    image: str = Field(description="the image file's bytes, base64 (a data: URL prefix is allowed)")
    id: str | None = Field(None, description="echoed in the answer; a random one when absent")
    lang: str | None = Field(None, description="prompt language (default: the task's first)")
    options: dict[str, Any] | None = Field(None, description="task options, e.g. {\"labels\": [\"cat\", \"dog\"]}")
    generation: dict[str, Any] | None = Field(None, description="generation settings over the task's search")


class RankedAnswer(BaseModel):
    answer: str
    score: float


class PredictAnswer(BaseModel):
    id: str
    task: str
    prediction: str | list[float] | None = Field(description="the task's answer: text, or a box [x0, y0, x1, y1] "
                                                 "in pixels of the image sent (grounding); null when there is none")
    ranking: list[RankedAnswer] | None = Field(None, description="closed-set tasks: the best answers with log-probabilities")
    box: list[float] | None = Field(None, description="[x0, y0, x1, y1] in pixels of the image sent, when the text holds 4 location tokens")
    latency_ms: float


def _box(row: dict, image_size: tuple[int, int]) -> Sequence[float] | None:
    """The task's own box prediction (its quantisation), else one read from 4 location tokens in the text."""
    prediction = row.get("prediction")
    if isinstance(prediction, list) and len(prediction) == 4:
        return prediction
    return text_to_box(row.get("text") or "", image_size)


class ErrorAnswer(BaseModel):
    error: str


_ERRORS = {status: {"model": ErrorAnswer, "description": text} for status, text in {
    400: "bad JSON, base64, image, field values, options or generation", 404: "unknown task",
    413: "body over --max-upload-mb or image over --max-pixels", 415: "not JSON or multipart/form-data",
    422: "unknown or missing fields", 503: "queue full or shutting down (see Retry-After)",
    504: "no answer within --timeout-s"}.items()}

_FORM_SCHEMA = {"type": "object", "required": ["task", "image"], "properties": {
    "task": {"type": "string"}, "image": {"type": "string", "format": "binary"}, "id": {"type": "string"},
    "lang": {"type": "string"}, "options": {"type": "string", "description": "JSON object"},
    "generation": {"type": "string", "description": "JSON object"}}, "additionalProperties": {"type": "string"}}


# ---- the app ---------------------------------------------------------------------------------------------------


class PredictorCache:
    """A small LRU of predictors by request key; thread-safe (predictors are built in a thread pool)."""

    def __init__(self, build: Callable[[PredictRequest], Any], size: int) -> None:
        self.build, self.size = build, size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request: PredictRequest) -> Any:
        key = request.key()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        predictor = self.build(request)
        with self._lock:
            self._items[key] = predictor
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return predictor


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)


def create_app(model: Any, processor: Any, tasks: Mapping[str, ServedTask], settings: ServeSettings | None = None,
               model_name: str = "model", predictor_factory: PredictorFactory | None = None,
               precision: str = "fp32", language: str | None = None) -> FastAPI:
    """The app serving `tasks` (see `requests.served_tasks`) with one loaded model and processor.

    `precision`: the mode the model was loaded in (`ofa_core.model.precision`), reported by `/health`.
    `language`: the model's language (its `ofa_task.json`; default: its tokenizer's), reported by `/health` and
    `/v1/tasks`, and the web page's default prompt language.
    `predictor_factory` replaces `inference.Predictor` (tests use slow or failing stubs).
    """
    settings = (settings or ServeSettings()).check()
    if predictor_factory is None:
        from ofa_core.inference.predictor import Predictor as predictor_factory
    metrics = Metrics()
    batcher = Batcher(settings.max_batch, settings.max_wait_ms / 1000, settings.max_queue, metrics)
    limits = settings.limits

    def build(request: PredictRequest) -> Any:
        task = request.task
        try:
            options = build_options(task.spec.options, request.options, "options", Path.cwd())
            predictor = predictor_factory(model, processor, task.spec, task.prompts[request.lang], options,
                                          request.generation)
            generation = getattr(predictor, "generation", None)
            if request.generation and generation is not None and hasattr(generation, "validate"):
                generation.validate(strict=True)
        except OFAError as error:
            raise ApiError(400, str(error)) from None
        except (ValueError, TypeError) as error:  # GenerationConfig.validate and options converters
            raise ApiError(400, f"{'generation' if request.generation else 'options'}: {one_line(error)}") from None
        return predictor

    predictors = PredictorCache(build, settings.cache_size)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.close()  # finishes the queued requests

    app = FastAPI(title="OFA inference", version="1", lifespan=lifespan,
                  description="Predictions from an OFA model for its registered tasks; see docs/serving.md.")
    app.state.settings, app.state.metrics, app.state.batcher, app.state.tasks = settings, metrics, batcher, tasks
    if language is None:
        language = getattr(getattr(processor, "tokenizer", None), "language", None)
    app.state.model_name, app.state.precision, app.state.language = model_name, precision, language

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        metrics.errors.labels(error.kind).inc()
        return _error(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        api = ApiError(error.status_code, str(error.detail), getattr(error, "headers", None))
        metrics.errors.labels(api.kind).inc()
        return _error(api)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        api = ApiError(422, f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', 'invalid')}")
        metrics.errors.labels(api.kind).inc()
        return _error(api)

    @app.exception_handler(Exception)
    async def _internal_error(_request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error")
        metrics.errors.labels("internal").inc()
        return JSONResponse({"error": "internal error; see the server log"}, status_code=500)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": model_name, "precision": precision, "language": language, "tasks": list(tasks)}

    @app.get("/v1/tasks")
    async def list_tasks() -> dict:
        return {"language": language, "tasks": [task.describe() for task in tasks.values()]}

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/v1/predict", responses={200: {"model": PredictAnswer}, **_ERRORS}, openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": PredictBody.model_json_schema()},
                                      "multipart/form-data": {"schema": _FORM_SCHEMA}}}})
    async def predict(request: Request) -> JSONResponse:
        started = time.monotonic()
        task_label, status = "-", 500
        try:
            values = await _read_values(request, settings.max_body_bytes)
            if isinstance(values.get("task"), str) and values["task"] in tasks:
                task_label = values["task"]
            answer = await _predict(values, started)
            status = 200
            return JSONResponse(answer)
        except ApiError as error:
            status = error.status
            metrics.errors.labels(error.kind).inc()
            return _error(error)
        finally:
            metrics.requests.labels(task_label, str(status)).inc()
            metrics.latency.observe(time.monotonic() - started)

    async def _predict(values: dict, started: float) -> dict:
        parsed = parse_predict(values, tasks, limits)
        image = await run_in_threadpool(open_image, parsed.image, limits.max_pixels)
        predictor = await run_in_threadpool(predictors.get, parsed)
        record = {"image": image, **parsed.fields}
        try:
            future = batcher.submit(parsed.key(), predictor, record)
        except QueueFull as full:
            message = ("the server is shutting down" if full.closing else
                       f"the request queue is full ({settings.max_queue} waiting, --max-queue); retry later")
            raise ApiError(503, message, {"Retry-After": str(full.retry_after)}) from None
        remaining = settings.timeout_s - (time.monotonic() - started)
        try:
            row = await asyncio.wait_for(future, max(remaining, 0.001))
        except TimeoutError:
            raise ApiError(504, f"no answer within {settings.timeout_s:g} s (--timeout-s)") from None
        except OFAError as error:
            raise ApiError(400, str(error)) from None
        except RecordDropped:
            raise ApiError(422, f"task '{parsed.task.name}' dropped this record in its preprocess; nothing to predict") from None
        except Exception as error:
            if parsed.generation:  # settings GenerationConfig accepted but generate() could not run with
                log.info("generation failed with the request's settings", exc_info=True)
                raise ApiError(400, f"generation: these settings failed ({type(error).__name__}: {one_line(error, 160)})") from None
            raise
        answer: dict[str, Any] = {"id": parsed.id if parsed.id is not None else uuid.uuid4().hex,
                                  "task": parsed.task.name, "prediction": row.get("prediction")}
        if row.get("ranking"):
            answer["ranking"] = row["ranking"]
        box = _box(row, image.size)
        if box is not None:
            answer["box"] = [round(float(v), 2) for v in box]
        answer["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        return answer

    _mount_page(app)
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    too_big = ApiError(413, f"body over this server's limit of {limit / 1024 / 1024:g} MB (--max-upload-mb)")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_values(request: Request, limit: int) -> dict:
    """The request's names and values: a JSON object, or a multipart form (file parts as bytes)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("application/json", "multipart/form-data") and not media_type.endswith("+json"):
        shown = f"'{one_line(media_type, 60)}'" if media_type else "none"
        raise ApiError(415, f"content type {shown}: send application/json or multipart/form-data")
    body = await _read_body(request, limit)
    if media_type != "multipart/form-data":
        try:
            values = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ApiError(400, f"body is not valid JSON ({error})" if body.strip() else "body is empty; send a JSON object") from None
        if not isinstance(values, dict):
            raise ApiError(400, f"body: expected a JSON object, got {type(values).__name__}")
        return values

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=64, max_part_size=limit)
    except Exception as error:  # noqa: BLE001 - multipart parser errors (missing boundary, malformed parts)
        detail = getattr(error, "detail", None) or error
        raise ApiError(400, f"multipart body could not be read ({one_line(detail, 160)})") from None
    values: dict[str, Any] = {}
    try:
        for key in form:
            parts = form.getlist(key)
            if len(parts) > 1:
                raise ApiError(400, f"{one_line(key, 40)}: given {len(parts)} times; give it once")
            part = parts[0]
            values[key] = await part.read() if isinstance(part, UploadFile) else part
    finally:
        await form.close()
    return values


PAGE = Path(__file__).parent / "page"
"""The web page (docs/serving.md): `index.html` at `/`, its files under `/static/`."""


def _mount_page(app: FastAPI) -> None:
    if not (PAGE / "index.html").is_file():
        return

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=PAGE), name="static")
