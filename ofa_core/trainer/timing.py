"""Where a run's time went: wall seconds per phase of the loop, for the summary and for profiling real runs.

On CUDA each phase ends with a synchronisation, so a phase is charged for its own kernels and not for
the ones queued before it; the loop already waits each step for the loss and the gradient norm.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import attrs
import torch

PHASES = ("data", "forward", "backward", "optimizer", "evaluation", "checkpoints")
"""data: reading, decoding and collating batches; forward: the model and the loss; optimizer: gradient
all-reduce, scaling, clipping, the update and the schedule; evaluation and checkpoints during training."""


@attrs.define
class PhaseTimes:
    device: torch.device
    seconds: dict[str, float] = attrs.field(factory=lambda: dict.fromkeys(PHASES, 0.0))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.seconds[name] += time.perf_counter() - started

    def summary(self, total: float) -> dict[str, float]:
        """Seconds per phase and `other` (logging, the rest of the loop), rounded to milliseconds."""
        rounded = {name: round(value, 3) for name, value in self.seconds.items()}
        rounded["other"] = round(max(total - sum(self.seconds.values()), 0.0), 3)
        return rounded


def breakdown_line(seconds: dict[str, float]) -> str:
    """'data 1.2 s (4%), forward 8.9 s (29%), ...' for the end of a run."""
    total = sum(seconds.values()) or 1.0
    return ", ".join(f"{name} {value:.1f} s ({100 * value / total:.0f}%)" for name, value in seconds.items())
