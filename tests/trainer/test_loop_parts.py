"""The loop's parts: its default loss honours `label_smoothing`, the due rule, the saved state, the log window."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import torch

from ofa_core.data import GroupDataset, group_examples
from ofa_core.trainer.cadence import due
from ofa_core.trainer.losses import label_smoothed_cross_entropy
from ofa_core.trainer.reporting import LogWindow
from ofa_core.trainer.state import Position, TrainState

from .test_train import make_trainer


def first_logged_loss(output_dir: Path) -> float:
    rows = [orjson.loads(line) for line in (output_dir / "log.jsonl").read_bytes().splitlines()]
    return next(row["loss"] for row in rows if row["split"] == "train" and row["step"] == 1)


@pytest.mark.parametrize("epsilon", [0.0, 0.3])
def test_trainer_without_loss_fn_uses_the_configured_label_smoothing(tmp_path: Path, epsilon: float) -> None:
    """One step over all examples in one batch: the logged loss is label_smoothed_cross_entropy with
    ε = training.label_smoothing on the untrained model's logits, and not the loss of the other ε.
    (No dropout in the tiny model; a frozen encoder keeps BatchNorm on its running statistics.)"""
    trainer = make_trainer(tmp_path, images=4, captions=1, max_steps=1, label_smoothing=epsilon, freeze_encoder=True)
    trainer._train_mode()  # as in training
    data = trainer.tasks[0].train_examples
    groups = group_examples(data, by_image=False)
    batch = trainer.collator(
        [GroupDataset(data, groups, trainer.processor.image_processor)[g] for g in range(len(groups))]
    )
    with torch.no_grad():
        output = trainer._forward(batch)
        direct = trainer.tasks[0].loss_fn(output, batch)
        expected = {eps: label_smoothed_cross_entropy(output.logits, batch["labels"], eps) for eps in (0.0, 0.3)}
    assert float(direct.loss_sum) == pytest.approx(float(expected[epsilon].loss_sum), rel=1e-6)
    per_token = {eps: float(loss.loss_sum) / loss.sample_size for eps, loss in expected.items()}
    assert per_token[0.0] != pytest.approx(per_token[0.3], rel=1e-3)
    trainer.train()
    logged = first_logged_loss(tmp_path / "run")
    assert logged == pytest.approx(per_token[epsilon], rel=1e-5)
    assert logged != pytest.approx(per_token[0.3 - epsilon], rel=1e-3)


def test_due_rule_for_steps_epochs_and_never() -> None:
    assert [s for s in range(1, 8) if due("steps", 3, s, end_of_epoch=False)] == [3, 6]
    assert due("steps", 3, 7, end_of_epoch=False, last_step=True)
    assert not due("steps", 3, 5, end_of_epoch=True)
    assert due("epoch", 3, 5, end_of_epoch=True) and not due("epoch", 1, 3, end_of_epoch=False)
    assert not due("epoch", 1, 3, end_of_epoch=False, last_step=True)
    assert not any(due("no", 1, s, end_of_epoch=True, last_step=True) for s in range(1, 4))


def test_train_state_json_round_trip_keeps_the_checkpoint_keys() -> None:
    state = TrainState(step=6, positions={"": Position(1, 4)}, best_checkpoint="run/checkpoint-4", best_metric=0.9)
    data = orjson.loads(orjson.dumps(state.to_json(2, {"score": 0.9})))
    assert list(data) == ["step", "epoch", "batch_position", "world_size", "metrics", "best_checkpoint", "best_metric"]
    assert data["world_size"] == 2 and data["metrics"] == {"score": 0.9}
    assert TrainState.from_json(data) == state
    assert TrainState().to_json(1, None)["metrics"] == {}
    assert TrainState.from_json({"step": 3, "epoch": 0, "batch_position": 3}) == TrainState(3, {"": Position(0, 3)})
    state.positions[""].next_epoch()
    assert state.positions[""] == Position(2, 0)


def test_train_state_of_a_mixture_keeps_each_task_s_position() -> None:
    state = TrainState.start(["caption", "vqa"])
    state.step, state.positions["vqa"] = 5, Position(2, 3)
    data = orjson.loads(orjson.dumps(state.to_json(1, None)))
    assert data["tasks"] == {"caption": {"epoch": 0, "batch_position": 0}, "vqa": {"epoch": 2, "batch_position": 3}}
    assert "epoch" not in data and TrainState.from_json(data) == state


def test_log_window_sums_steps_and_keeps_the_latest_norm() -> None:
    window = LogWindow()
    window.add(
        {"loss_sum": 6.0, "sample_size": 3.0, "nsamples": 2.0, "num_dropped": 1.0, "nll_loss": 3.0, "grad_norm": 5.0}
    )
    window.add(
        {
            "loss_sum": 2.0,
            "sample_size": 1.0,
            "nsamples": 1.0,
            "num_dropped": 0.0,
            "nll_loss": 1.0,
            "grad_norm": 0.5,
            "loss_scale": 1024.0,
        }
    )
    values = window.values(lr=1e-3, epochs={"": 1.5})
    assert list(values) == [
        "loss",
        "lr",
        "grad_norm",
        "samples_per_s",
        "tokens_per_s",
        "dropped",
        "epoch",
        "nll_loss",
        "loss_scale",
    ]
    assert (values["loss"], values["nll_loss"], values["grad_norm"], values["loss_scale"]) == (2.0, 1.0, 0.5, 1024.0)
    assert (values["lr"], values["dropped"], values["epoch"]) == (1e-3, 1.0, 1.5)
    assert values["tokens_per_s"] == pytest.approx(4 / 3 * values["samples_per_s"])
    window.reset()
    window.add({"loss_sum": 1.0, "sample_size": 0.0, "nsamples": 0.0, "num_dropped": 2.0, "grad_norm": 1.0})
    assert set(window.values(0.0, {"": 0.0})) == {
        "loss",
        "lr",
        "grad_norm",
        "samples_per_s",
        "tokens_per_s",
        "dropped",
        "epoch",
    }
    assert window.values(0.0, {"": 0.0})["loss"] == 1.0  # an all-dropped step divides by 1, not 0


def test_log_window_of_a_mixture_reports_each_task() -> None:
    window = LogWindow()
    window.add({"loss_sum": 6.0, "sample_size": 3.0, "nsamples": 2.0, "num_dropped": 0.0, "grad_norm": 1.0}, "caption")
    window.add({"loss_sum": 1.0, "sample_size": 2.0, "nsamples": 4.0, "num_dropped": 0.0, "grad_norm": 1.0}, "vqa")
    window.add({"loss_sum": 2.0, "sample_size": 1.0, "nsamples": 2.0, "num_dropped": 0.0, "grad_norm": 1.0}, "caption")
    values = window.values(1e-3, {"caption": 0.5, "vqa": 0.25})
    assert values["loss"] == 9.0 / 6.0
    assert (values["caption/loss"], values["vqa/loss"]) == (2.0, 0.5)
    assert (values["caption/steps"], values["vqa/steps"]) == (2, 1)
    assert (values["caption/epoch"], values["vqa/epoch"]) == (0.5, 0.25) and "epoch" not in values
    assert values["caption/samples_per_s"] == pytest.approx(values["vqa/samples_per_s"])
