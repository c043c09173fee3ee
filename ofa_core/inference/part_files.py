"""Predicting on several processes: which inputs a process takes, and one output file in input order.

Under `torchrun` (env `RANK`, `WORLD_SIZE`, `LOCAL_RANK`), input number i goes to the process of rank
i % WORLD_SIZE. Each process writes its rows, in input order, to a part file next to the output
(`.<output name>.part-<run>-<rank>`); after a barrier, rank 0 merges the parts (and the rows of an interrupted
run's parts, when resuming) after the rows the output already holds, in input order, and removes the parts.
A gloo process group carries the barrier and the few values the processes exchange.
"""

from __future__ import annotations

import heapq
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from ofa_core._errors import OFAError

TIMEOUT = timedelta(hours=24)
"""How long a process waits at the barrier for the others (they finish within a batch of each other unless
their shares of bad images differ widely)."""


class Processes:
    """This process's place among the processes `torchrun` started (rank 0 of 1 without torchrun)."""

    def __init__(self, environ: dict | None = None) -> None:
        environ = os.environ if environ is None else environ
        try:
            self.rank = int(environ.get("RANK", 0))
            self.size = int(environ.get("WORLD_SIZE", 1))
            self.local_rank = int(environ.get("LOCAL_RANK", 0))
        except ValueError as error:
            raise OFAError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({error})") from None
        if not 0 <= self.rank < self.size:
            raise OFAError(f"RANK={self.rank} is outside WORLD_SIZE={self.size}")
        self._group = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def start(self) -> None:
        """Join the other processes (a gloo group, CPU only); nothing to do alone."""
        if self.size > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("gloo", timeout=TIMEOUT)
                self._group = True

    def stop(self, together: bool = True) -> None:
        """Leave the group; `together` (after a run every process finished) waits for the others first, since a
        process tearing gloo down while a peer still uses it can abort that peer. A failing process leaves alone."""
        if self._group:
            import torch.distributed as dist

            if together:
                dist.barrier()
            dist.destroy_process_group()
            self._group = False

    def device(self, requested: str | None = None) -> str:
        """`requested` if given; else cuda:LOCAL_RANK when CUDA is available, else cpu."""
        if requested:
            return requested
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def owns(self, index: int) -> bool:
        return index % self.size == self.rank

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value`, on every process."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        box = [value if self.main else None]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value`, by rank; also a barrier: it returns once all processes have called it."""
        if self.size == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values


def run_tag(world: Processes) -> str:
    """A name shared by this run's processes, so its part files never collide with an interrupted run's."""
    return world.broadcast(uuid.uuid4().hex[:12] if world.main else None)


def part_path(output: Path, tag: str, rank: int) -> Path:
    return output.with_name(f".{output.name}.part-{tag}-{rank}")


def leftover_parts(output: Path, tag: str) -> list[Path]:
    """Part files of earlier runs writing `output` that never got merged (the run was interrupted)."""
    return sorted(
        p for p in output.parent.glob(f".{output.name}.part-*") if not p.name.startswith(f".{output.name}.part-{tag}-")
    )


def output_rows(path: Path, lenient_tail: bool = False) -> Iterator[tuple[bytes, dict]]:
    """(line, row) for each line of a JSONL file of prediction rows (objects with an `id`).

    A line that is not such a row is an `OFAError`, except the last line when `lenient_tail`: a write cut off by
    a kill, which is dropped.
    """
    previous: tuple[int, bytes] | None = None
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if previous is not None:
                yield _row(path, *previous)
            previous = (number, line) if line.strip() else None
    if previous is not None:
        try:
            yield _row(path, *previous)
        except OFAError:
            if not lenient_tail:
                raise


def _row(path: Path, number: int, line: bytes) -> tuple[bytes, dict]:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        row = None
    if not isinstance(row, dict) or "id" not in row:
        raise OFAError(
            f"{path}:{number}: not a prediction row (a JSON object with an 'id'); cannot resume from this file"
        )
    return line if line.endswith(b"\n") else line + b"\n", row


def salvaged_rows(parts: Iterable[Path], order: dict[str, int], done: set[str]) -> list[tuple[int, bytes]]:
    """(input index, line) of the rows in an interrupted run's parts that are still wanted (inputs of this run, not
    in `done`), each id once, by input index. A part's last line may be cut off; other bad lines are ignored too."""
    found: dict[str, tuple[int, bytes]] = {}
    for part in parts:
        with part.open("rb") as handle:
            for line in handle:
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                key = row.get("id") if isinstance(row, dict) else None
                if isinstance(key, str) and key in order and key not in done:
                    found.setdefault(key, (order[key], line if line.endswith(b"\n") else line + b"\n"))
    return sorted(found.values())


def _indexed(path: Path, order: dict[str, int]) -> Iterator[tuple[int, bytes]]:
    """(input index, line) for a part's rows; a row whose id a task's preprocess changed keeps its place in the part."""
    index = -1
    with path.open("rb") as handle:
        for line in handle:
            index = order.get(orjson.loads(line).get("id"), index)
            yield index, line


def merge(
    output: Path, kept: Path | None, parts: list[Path], salvaged: list[tuple[int, bytes]], order: dict[str, int]
) -> int:
    """Write `output`: the lines of `kept` (the existing output, when resuming) as they are, then the rows of
    `parts` (each in input order) and `salvaged`, merged in input order. Atomic: a temporary file renamed at
    the end, after which the parts are removed. Returns the number of rows added."""
    if kept is None and not salvaged and len(parts) == 1:
        added = sum(1 for _ in parts[0].open("rb"))
        os.replace(parts[0], output)
        return added
    temporary = output.with_name(f".{output.name}.partial")
    added = 0
    with temporary.open("wb") as out:
        if kept is not None and kept.exists():
            for line, _ in output_rows(kept, lenient_tail=True):
                out.write(line)
        for _, line in heapq.merge(
            iter(salvaged), *(_indexed(part, order) for part in parts), key=lambda item: item[0]
        ):
            out.write(line)
            added += 1
    os.replace(temporary, output)
    for part in parts:
        part.unlink(missing_ok=True)
    return added
