"""Answering one prediction request: its predictor (built once per request key), the batch it joins, its answer.

`Answerer.answer` takes the request's names and values (`body.read_values`) and returns the JSON answer, or
raises an `ApiError` saying what the client can fix (400), that the queue is full (503) or that no answer came
in time (504).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from ofa_core._errors import OFAError
from ofa_core.plugin import text_to_box
from ofa_core.recipe import build_options
from ofa_core.serving.batcher import Batcher, QueueFull, RecordDropped
from ofa_core.serving.requests import ApiError, Limits, PredictRequest, ServedTask, one_line, open_image, parse_predict

log = logging.getLogger("ofa_core.serving")

PredictorFactory = Callable[..., Callable[[list[dict]], list[dict]]]
"""(model, processor, task_spec, prompt, options, generation) -> predictor; `Predictor` by default."""


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


class Answerer:
    """The model, its predictors and the batcher behind `POST /v1/predict`."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        tasks: Mapping[str, ServedTask],
        factory: PredictorFactory,
        batcher: Batcher,
        limits: Limits,
        *,
        cache_size: int,
        max_queue: int,
        timeout_s: float,
    ) -> None:
        self.model, self.processor, self.tasks, self.factory = model, processor, tasks, factory
        self.batcher, self.limits, self.max_queue, self.timeout_s = batcher, limits, max_queue, timeout_s
        self.predictors = PredictorCache(self.build, cache_size)

    def build(self, request: PredictRequest) -> Any:
        """The predictor for the request's task, language, options and generation; bad ones are a 400."""
        task = request.task
        try:
            options = build_options(task.spec.options, request.options, "options", Path.cwd())
            predictor = self.factory(
                self.model, self.processor, task.spec, task.prompts[request.lang], options, request.generation
            )
            generation = getattr(predictor, "generation", None)
            if request.generation and generation is not None and hasattr(generation, "validate"):
                generation.validate(strict=True)
        except OFAError as error:
            raise ApiError(400, str(error)) from None
        except (ValueError, TypeError) as error:  # GenerationConfig.validate and options converters
            raise ApiError(400, f"{'generation' if request.generation else 'options'}: {one_line(error)}") from None
        return predictor

    async def answer(self, values: dict, started: float) -> dict:
        """The JSON answer to a request's values; `started` (time.monotonic) counts toward the timeout."""
        parsed = parse_predict(values, self.tasks, self.limits)
        image = await run_in_threadpool(open_image, parsed.image, self.limits.max_pixels)
        predictor = await run_in_threadpool(self.predictors.get, parsed)
        row = await self._row(parsed, predictor, {"image": image, **parsed.fields}, started)
        answer: dict[str, Any] = {
            "id": parsed.id if parsed.id is not None else uuid.uuid4().hex,
            "task": parsed.task.name,
            "prediction": row.get("prediction"),
        }
        if row.get("ranking"):
            answer["ranking"] = row["ranking"]
        box = _box(row, image.size)
        if box is not None:
            answer["box"] = [round(float(v), 2) for v in box]
        answer["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        return answer

    async def _row(self, parsed: PredictRequest, predictor: Any, record: dict, started: float) -> dict:
        """The predictor's row for `record`, predicted in a batch with the requests that share its key."""
        try:
            future = self.batcher.submit(parsed.key(), predictor, record)
        except QueueFull as full:
            message = (
                "the server is shutting down"
                if full.closing
                else f"the request queue is full ({self.max_queue} waiting, --max-queue); retry later"
            )
            raise ApiError(503, message, {"Retry-After": str(full.retry_after)}) from None
        remaining = self.timeout_s - (time.monotonic() - started)
        try:
            return await asyncio.wait_for(future, max(remaining, 0.001))
        except TimeoutError:
            raise ApiError(504, f"no answer within {self.timeout_s:g} s (--timeout-s)") from None
        except OFAError as error:
            raise ApiError(400, str(error)) from None
        except RecordDropped:
            raise ApiError(
                422, f"task '{parsed.task.name}' dropped this record in its preprocess; nothing to predict"
            ) from None
        except Exception as error:
            if parsed.generation:  # settings GenerationConfig accepted but generate() could not run with
                log.info("generation failed with the request's settings", exc_info=True)
                raise ApiError(
                    400, f"generation: these settings failed ({type(error).__name__}: {one_line(error, 160)})"
                ) from None
            raise


def _box(row: dict, image_size: tuple[int, int]) -> Sequence[float] | None:
    """The task's own box prediction (its quantisation), else one read from 4 location tokens in the text."""
    prediction = row.get("prediction")
    if isinstance(prediction, list) and len(prediction) == 4:
        return prediction
    return text_to_box(row.get("text") or "", image_size)
