"""`TrainState`: where a run stands, saved in each checkpoint's `trainer_state.json` and restored on resume."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.define
class TrainState:
    """The optimizer step, the epoch and the batches of it already consumed, and the best checkpoint so far.

    `batch_position` counts this process's micro-batches of `epoch`; a resumed run skips them.
    """

    step: int = 0
    epoch: int = 0
    batch_position: int = 0
    best_checkpoint: str | None = None
    best_metric: float | None = None

    def next_epoch(self) -> None:
        self.epoch, self.batch_position = self.epoch + 1, 0

    def to_json(self, world_size: int, metrics: dict | None) -> dict[str, Any]:
        """The `trainer_state.json` object; `metrics` are the scores of the evaluation at this step, if any."""
        return {"step": self.step, "epoch": self.epoch, "batch_position": self.batch_position, "world_size": world_size,
                "metrics": metrics or {}, "best_checkpoint": self.best_checkpoint, "best_metric": self.best_metric}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainState:
        return cls(step=data["step"], epoch=data["epoch"], batch_position=data["batch_position"],
                   best_checkpoint=data.get("best_checkpoint"), best_metric=data.get("best_metric"))
