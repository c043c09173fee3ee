"""The FastAPI app of `ofa serve`: `POST /v1/predict`, `GET /v1/tasks`, `GET /health`, `GET /metrics`.

One loaded model answers every served task: a `Predictor` per (task, language, options, generation), kept in a
small LRU cache, and the `Batcher` groups requests that can share a forward pass (`answering`). The body is read
by `body`, checked by `requests`, and documented for OpenAPI by `openapi`; this module holds the routes. Every error
is JSON
`{"error": "<one line>"}` with a 4xx status for anything the client can fix; tracebacks stay in the server log.
The contract is in docs/serving.md.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ofa_core._errors import OFAError
from ofa_core.serving.answering import Answerer, PredictorFactory
from ofa_core.serving.batcher import Batcher
from ofa_core.serving.body import read_values
from ofa_core.serving.metrics import Metrics
from ofa_core.serving.openapi import ERRORS, REQUEST_BODY, PredictAnswer
from ofa_core.serving.requests import ApiError, Limits, ServedTask

log = logging.getLogger("ofa_core.serving")


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


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)


def create_app(
    model: Any,
    processor: Any,
    tasks: Mapping[str, ServedTask],
    settings: ServeSettings | None = None,
    model_name: str = "model",
    predictor_factory: PredictorFactory | None = None,
    precision: str = "fp32",
    language: str | None = None,
) -> FastAPI:
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
    answerer = Answerer(
        model,
        processor,
        tasks,
        predictor_factory,
        batcher,
        settings.limits,
        cache_size=settings.cache_size,
        max_queue=settings.max_queue,
        timeout_s=settings.timeout_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.close()  # finishes the queued requests

    app = FastAPI(
        title="OFA inference",
        version="1",
        lifespan=lifespan,
        description="Predictions from an OFA model for its registered tasks; see docs/serving.md.",
    )
    app.state.settings, app.state.metrics, app.state.batcher, app.state.tasks = settings, metrics, batcher, tasks
    if language is None:
        language = getattr(getattr(processor, "tokenizer", None), "language", None)
    app.state.model_name, app.state.precision, app.state.language = model_name, precision, language
    _add_error_handlers(app, metrics)
    _add_routes(app, answerer, metrics, settings.max_body_bytes)
    _mount_page(app)
    return app


def _add_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Every error as one JSON line with its status, counted by kind; tracebacks only in the server log."""

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


def _add_routes(app: FastAPI, answerer: Answerer, metrics: Metrics, max_body_bytes: int) -> None:
    tasks = answerer.tasks

    @app.get("/health")
    async def health() -> dict:
        state = app.state
        return {
            "status": "ok",
            "model": state.model_name,
            "precision": state.precision,
            "language": state.language,
            "tasks": list(tasks),
        }

    @app.get("/v1/tasks")
    async def list_tasks() -> dict:
        return {"language": app.state.language, "tasks": [task.describe() for task in tasks.values()]}

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/v1/predict", responses={200: {"model": PredictAnswer}, **ERRORS}, openapi_extra=REQUEST_BODY)
    async def predict(request: Request) -> JSONResponse:
        started = time.monotonic()
        task_label, status = "-", 500
        try:
            values = await read_values(request, max_body_bytes)
            if isinstance(values.get("task"), str) and values["task"] in tasks:
                task_label = values["task"]
            answer = await answerer.answer(values, started)
            status = 200
            return JSONResponse(answer)
        except ApiError as error:
            status = error.status
            metrics.errors.labels(error.kind).inc()
            return _error(error)
        finally:
            metrics.requests.labels(task_label, str(status)).inc()
            metrics.latency.observe(time.monotonic() - started)


PAGE = Path(__file__).parent / "page"
"""The web page (docs/serving.md): `index.html` at `/`, its files under `/static/`."""


def _mount_page(app: FastAPI) -> None:
    if not (PAGE / "index.html").is_file():
        return

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=PAGE), name="static")
