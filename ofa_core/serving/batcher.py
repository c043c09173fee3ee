"""Dynamic batching: requests that can share a forward pass wait together, briefly, then run as one batch.

Requests are grouped by a key (task, language, options, generation). The oldest group runs as soon as it
holds `max_batch` requests or its first request has waited `max_wait_s`. The model runs in one worker thread,
off the event loop (torch releases the GIL), one batch at a time; requests arriving meanwhile queue up and
form the next batches. The queue is bounded: past `max_queue` waiting requests, `submit` raises `QueueFull`.
`close` stops new work and finishes what is queued.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("ofa_core.serving")


class QueueFull(Exception):
    """The queue holds `max_queue` requests; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int, closing: bool = False) -> None:
        super().__init__("server is shutting down" if closing else "the request queue is full")
        self.retry_after, self.closing = retry_after, closing


class RecordDropped(Exception):
    """The task's preprocess dropped the record, so there is no answer for it."""


@dataclass
class _Item:
    predictor: Callable[[list[dict]], list[dict]]
    record: dict
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Queue requests by key and run them in batches in one worker thread.

    `metrics` (optional) gets `batch_size.observe(n)` per forward pass and `queue_depth.set(n)`.
    """

    def __init__(self, max_batch: int = 8, max_wait_s: float = 0.010, max_queue: int = 64, metrics: Any = None) -> None:
        self.max_batch, self.max_wait_s, self.max_queue, self.metrics = max_batch, max_wait_s, max_queue, metrics
        self._groups: OrderedDict[Hashable, deque[_Item]] = OrderedDict()
        self._depth = 0
        self._closing = False
        self._batch_seconds = 0.0  # moving average of a forward pass, for Retry-After
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._serial = 0

    @property
    def depth(self) -> int:
        """Requests queued and not yet running."""
        return self._depth

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ofa-model")
        self._task = asyncio.create_task(self._loop(), name="ofa-batcher")

    async def close(self) -> None:
        """Refuse new requests, finish the queued ones, stop the worker thread."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def retry_after(self) -> int:
        """Seconds until the queue has likely room again (at least 1)."""
        batches = math.ceil(max(self._depth, 1) / self.max_batch)
        return max(1, math.ceil(batches * self._batch_seconds))

    def submit(self, key: Hashable, predictor: Callable[[list[dict]], list[dict]], record: dict) -> asyncio.Future:
        """Queue `record` for `predictor`; the future resolves to its row (or its error). Raises `QueueFull`."""
        if self._task is None:
            raise RuntimeError("Batcher.start() has not run")
        if self._closing:
            raise QueueFull(self.retry_after(), closing=True)
        if self._depth >= self.max_queue:
            raise QueueFull(self.retry_after())
        self._serial += 1
        record = {**record, "id": f"{self._serial}"}  # unique within a batch: rows are matched back by id
        item = _Item(predictor, record, asyncio.get_running_loop().create_future())
        self._groups.setdefault(key, deque()).append(item)
        self._set_depth(self._depth + 1)
        self._wakeup.set()
        return item.future

    def _set_depth(self, depth: int) -> None:
        self._depth = depth
        if self.metrics is not None:
            self.metrics.queue_depth.set(depth)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._groups:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            key, items = next(iter(self._groups.items()))  # the group whose first request came first
            deadline = items[0].arrived + self.max_wait_s
            while len(items) < self.max_batch and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = [items.popleft() for _ in range(min(self.max_batch, len(items)))]
            if not items:
                del self._groups[key]
            self._set_depth(self._depth - len(batch))
            batch = [item for item in batch if not item.future.done()]  # timed out while waiting
            if batch:
                await self._run(loop, batch)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        started = time.monotonic()
        try:
            rows = await loop.run_in_executor(self._executor, batch[0].predictor, [item.record for item in batch])
        except Exception as error:
            if len(batch) == 1:
                _resolve(batch[0].future, error=error)
                return
            log.info("a batch of %d failed (%s); running its requests one at a time", len(batch), error)
            for item in batch:
                await self._run(loop, [item])
            return
        finally:
            elapsed = time.monotonic() - started
            self._batch_seconds = elapsed if not self._batch_seconds else 0.8 * self._batch_seconds + 0.2 * elapsed
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(batch))
        by_id = {row.get("id"): row for row in rows}
        for item in batch:
            row = by_id.get(item.record["id"])
            _resolve(item.future, row=row) if row is not None else _resolve(item.future, error=RecordDropped())


def _resolve(future: asyncio.Future, row: dict | None = None, error: BaseException | None = None) -> None:
    if future.done():  # timed out or cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(row)
