"""`TrainState`: where a run stands, saved in each checkpoint's `trainer_state.json` and restored on resume."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.define
class Position:
    """How far one task's data has been read: its epoch, and the micro-batches of it this process consumed."""

    epoch: int = 0
    batch_position: int = 0

    def next_epoch(self) -> None:
        self.epoch, self.batch_position = self.epoch + 1, 0


@attrs.define
class TrainState:
    """The optimizer step, each task's position in its data, and the best checkpoint so far.

    A single-task run has one position, under the label ""; its JSON keeps `epoch` and `batch_position`
    at the top level. A mixture stores one position per task label under `tasks`. The task of each step
    is a function of the step (`tasks.task_for_step`), so nothing else is needed to resume exactly.
    """

    step: int = 0
    positions: dict[str, Position] = attrs.field(factory=lambda: {"": Position()})
    best_checkpoint: str | None = None
    best_metric: float | None = None

    @classmethod
    def start(cls, labels: list[str]) -> TrainState:
        return cls(positions={label: Position() for label in labels})

    def to_json(self, world_size: int, metrics: dict | None) -> dict[str, Any]:
        """The `trainer_state.json` object; `metrics` are the scores of the evaluation at this step, if any."""
        if list(self.positions) == [""]:
            where = attrs.asdict(self.positions[""])
        else:
            where = {"tasks": {label: attrs.asdict(position) for label, position in self.positions.items()}}
        return {
            "step": self.step,
            **where,
            "world_size": world_size,
            "metrics": metrics or {},
            "best_checkpoint": self.best_checkpoint,
            "best_metric": self.best_metric,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainState:
        if "tasks" in data:
            positions = {label: Position(**position) for label, position in data["tasks"].items()}
        else:
            positions = {"": Position(data["epoch"], data["batch_position"])}
        return cls(
            step=data["step"],
            positions=positions,
            best_checkpoint=data.get("best_checkpoint"),
            best_metric=data.get("best_metric"),
        )
