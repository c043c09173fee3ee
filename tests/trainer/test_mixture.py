"""Multi-task training: which task each step trains on, per-task logs and scores, exact resume, data parallelism."""

from __future__ import annotations

import functools
import os
import socket
from collections import Counter
from pathlib import Path

import orjson
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from framework.conftest import Counter as CountingMetric
from safetensors.torch import load_file

from ofa_core import OFAError
from ofa_core.model.generation_config import as_generation_config
from ofa_core.model.search import SearchSettings, special_token_ids
from ofa_core.recipe.training import TrainingConfig
from ofa_core.testing import tiny_model
from ofa_core.trainer.loop import Trainer
from ofa_core.trainer.tasks import TaskParts, mixture_probabilities, task_for_step

from .helpers import examples, kill_while_saving, make_processor


def test_steps_follow_the_task_probabilities() -> None:
    probabilities = [0.5, 0.3, 0.2]
    draws = Counter(task_for_step(step, probabilities, seed=7) for step in range(20_000))
    chi_square = sum((draws[i] - 20_000 * p) ** 2 / (20_000 * p) for i, p in enumerate(probabilities))
    assert chi_square < 13.82  # the 0.999 quantile of chi-square with 2 degrees of freedom
    assert [task_for_step(s, probabilities, 7) for s in range(50)] == [
        task_for_step(s, probabilities, 7) for s in range(50)
    ]
    assert [task_for_step(s, probabilities, 7) for s in range(50)] != [
        task_for_step(s, probabilities, 8) for s in range(50)
    ]
    assert {task_for_step(s, [1.0], 3) for s in range(10)} == {0}
    state = torch.get_rng_state()
    task_for_step(5, probabilities, 1)
    assert torch.equal(state, torch.get_rng_state())  # the draw leaves dropout's random stream alone


def test_mixture_probabilities_follow_weights_and_temperature() -> None:
    assert mixture_probabilities([2, 1, 1], [10, 1000, 10]) == [0.5, 0.25, 0.25]
    assert mixture_probabilities([1, 1], [100, 300], temperature=1.0) == pytest.approx([0.25, 0.75])
    assert mixture_probabilities([1, 1], [100, 400], temperature=2.0) == pytest.approx([1 / 3, 2 / 3])
    flat = mixture_probabilities([1, 1], [100, 400], temperature=1e6)
    assert flat == pytest.approx([0.5, 0.5], abs=1e-3)


def _model():
    return tiny_model(patch_image_size=32, scale=0.1)


def make_mixture(tmp_path: Path, model=None, probabilities=(0.7, 0.3), **options) -> Trainer:
    tmp_path.mkdir(parents=True, exist_ok=True)
    processor = make_processor(tmp_path)
    settings = {
        "output_dir": str(tmp_path / "run"),
        "max_steps": 6,
        "per_device_train_batch_size": 2,
        "learning_rate": 3e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        **options,
    }
    generation = as_generation_config(
        SearchSettings(beam=1, max_len_b=2, min_len=1), **special_token_ids(_model().config)
    )
    tasks = []
    for index, (label, probability) in enumerate(zip(("first", "second"), probabilities)):
        data = examples(processor, 4, 2, seed=index)
        # The counting metric scores each task with its number of evaluation examples, known in advance.
        tasks.append(
            TaskParts(
                label=label,
                train_examples=data,
                eval_examples=data[: 2 + index],
                metrics={"n": functools.partial(CountingMetric, None)},
                generation_config=generation,
                probability=probability,
            )
        )
    return Trainer(model or _model(), TrainingConfig(**settings), processor, tasks=tasks)


def _log(output_dir: Path, split: str = "train") -> list[dict]:
    rows = [orjson.loads(line) for line in (output_dir / "log.jsonl").read_bytes().splitlines()]
    return [row for row in rows if row["split"] == split]


def test_each_step_trains_its_drawn_task_and_logs_per_task(tmp_path: Path) -> None:
    trainer = make_mixture(tmp_path, max_steps=8, eval_strategy="steps", eval_steps=8, logging_steps=1)
    result = trainer.train()
    rows = _log(tmp_path / "run")
    drawn = [("first", "second")[task_for_step(step, [0.7, 0.3], 42)] for step in range(8)]
    assert [next(key.split("/")[0] for key in row if key.endswith("/steps")) for row in rows] == drawn
    for row, label in zip(rows, drawn):
        assert row[f"{label}/loss"] == row["loss"] and row[f"{label}/steps"] == 1
        assert {"first/epoch", "second/epoch"} <= set(row) and "epoch" not in row
    evaluation = _log(tmp_path / "run", "eval")[-1]
    assert (evaluation["first/count"], evaluation["second/count"]) == (2.0, 3.0)  # each task with its own examples
    assert set(result["epochs"]) == {"first", "second"}
    counts = Counter(drawn)
    assert result["epochs"]["first"] == pytest.approx(counts["first"] / 4)  # 4 micro-batches of 2 per epoch


def test_best_checkpoint_follows_a_named_or_weighted_score(tmp_path: Path) -> None:
    trainer = make_mixture(
        tmp_path / "named",
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="steps",
        save_steps=3,
        metric_for_best_model="second/count",
    )
    assert trainer.train()["best_metric"] == 3.0
    trainer = make_mixture(
        tmp_path / "weighted",
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="steps",
        save_steps=3,
        metric_for_best_model={"first/count": 2.0, "second/count": 0.5},
    )
    assert trainer.train()["best_metric"] == 2.0 * 2 + 0.5 * 3
    trainer = make_mixture(
        tmp_path / "typo", eval_strategy="steps", eval_steps=3, metric_for_best_model={"third/count": 1.0}
    )
    with pytest.raises(OFAError, match="no score named third/count"):
        trainer.train()


def test_a_mixture_refuses_epoch_strategies(tmp_path: Path) -> None:
    with pytest.raises(OFAError, match="'epoch' has no single meaning"):
        make_mixture(tmp_path, eval_strategy="epoch").train()


def test_a_mixture_killed_mid_run_resumes_exactly(tmp_path: Path) -> None:
    options = {"max_steps": 7, "save_strategy": "steps", "save_steps": 3, "gradient_accumulation_steps": 2}
    make_mixture(tmp_path / "straight", **options).train()
    kill_while_saving("test_mixture:make_mixture", tmp_path / "killed", 6, **options)
    run = tmp_path / "killed" / "run"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-3"]
    assert set(orjson.loads((run / "checkpoint-3" / "trainer_state.json").read_bytes())["tasks"]) == {"first", "second"}
    make_mixture(tmp_path / "killed", resume_from_checkpoint="auto", **options).train()
    straight = {row["step"]: row["loss"] for row in _log(tmp_path / "straight" / "run")}
    rows = _log(run)
    assert [row["step"] for row in rows] == [
        1,
        2,
        3,
        4,
        5,
        6,
        4,
        5,
        6,
        7,
    ]  # the killed run logged 1-6, the resumed run 4-7
    assert [row["loss"] for row in rows[:6]] == [straight[step] for step in range(1, 7)]
    assert {row["step"]: row["loss"] for row in rows[6:]} == {step: loss for step, loss in straight.items() if step > 3}
    one = load_file(tmp_path / "straight" / "run" / "checkpoint-7" / "model.safetensors")
    two = load_file(run / "checkpoint-7" / "model.safetensors")
    assert all(torch.equal(one[name], two[name]) for name in one)


def test_resuming_with_other_tasks_is_refused(tmp_path: Path) -> None:
    make_mixture(tmp_path, max_steps=2, save_strategy="steps", save_steps=2).train()
    from .test_train import make_trainer

    with pytest.raises(OFAError, match="was written for the tasks"):
        make_trainer(tmp_path, resume_from_checkpoint="auto", max_steps=3).train()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, tmp: str, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        make_mixture(
            Path(tmp),
            model=_model().double(),
            per_device_train_batch_size=2,
            max_steps=4,
            save_strategy="steps",
            save_steps=4,
            freeze_encoder=True,
        ).train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_processes_draw_the_same_tasks_and_match_one_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "two"), _free_port()), nprocs=2, join=True)
    make_mixture(
        tmp_path / "one",
        model=_model().double(),
        per_device_train_batch_size=4,
        max_steps=4,
        save_strategy="steps",
        save_steps=4,
        freeze_encoder=True,
    ).train()
    two = load_file(tmp_path / "two" / "run" / "checkpoint-4" / "model.safetensors")
    one = load_file(tmp_path / "one" / "run" / "checkpoint-4" / "model.safetensors")
    worst = max(float((one[name] - two[name]).abs().max()) for name in one)
    assert worst <= 1e-5, worst
    assert [row["loss"] for row in _log(tmp_path / "two" / "run")] == pytest.approx(
        [row["loss"] for row in _log(tmp_path / "one" / "run")], rel=1e-6
    )


def test_one_task_as_a_mixture_trains_bit_identically_to_the_single_task_form(tmp_path: Path) -> None:
    """The mixture machinery adds nothing to one task: same batches, same losses, same weights."""
    import attrs

    from .test_train import make_trainer

    options = {
        "max_steps": 5,
        "gradient_accumulation_steps": 2,
        "per_device_train_batch_size": 2,
        "save_strategy": "steps",
        "save_steps": 5,
    }
    single = make_trainer(tmp_path / "single", **options)
    single.train()
    config = attrs.evolve(single.config, output_dir=str(tmp_path / "labelled" / "run"))
    labelled = Trainer(
        tiny_model(patch_image_size=32, scale=0.1),
        config,
        single.processor,
        tasks=[TaskParts(label="only", train_examples=single.tasks[0].train_examples)],
    )
    labelled.train()
    one = {row["step"]: row["loss"] for row in _log(tmp_path / "single" / "run")}
    two = {row["step"]: row["loss"] for row in _log(tmp_path / "labelled" / "run")}
    assert one == two and len(one) == 5
    first = load_file(tmp_path / "single" / "run" / "checkpoint-5" / "model.safetensors")
    second = load_file(tmp_path / "labelled" / "run" / "checkpoint-5" / "model.safetensors")
    assert all(torch.equal(first[name], second[name]) for name in first)
