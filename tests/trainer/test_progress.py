"""What a run shows a user: progress lines when stderr is no terminal, sample ids, per-class tables, `ofa eval`'s
TensorBoard scalars, and one voice under torchrun."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.cli.run import show_samples
from ofa_core.model.generation_config import as_generation_config
from ofa_core.model.search import SearchSettings, special_token_ids
from ofa_core.testing import tiny_checkpoint
from ofa_core.trainer import reporting, timing

from .test_mixture import make_mixture
from .test_recipe import write_muge
from .test_train import make_trainer

LINE = re.compile(
    r"^ofa: step (\d+)/(\d+) \((\d+)%\) loss (\d+\.\d{4})(?: \((.+)\))? lr (\S+) (\d+\.\d) samples/s ETA (\S+)$"
)


def progress(err: str) -> list[re.Match]:
    return [found for line in err.splitlines() if (found := LINE.match(line))]


def test_without_a_terminal_each_log_step_prints_a_progress_line(tmp_path: Path, capsys) -> None:
    make_trainer(tmp_path, max_steps=4, logging_steps=2, learning_rate=5e-4, lr_scheduler_type="constant").train()
    err = capsys.readouterr().err
    lines = progress(err)
    assert [(int(m[1]), int(m[2]), int(m[3])) for m in lines] == [(2, 4, 50), (4, 4, 100)]
    assert all(float(m[4]) > 0 and m[6] == "5.0e-04" and float(m[7]) > 0 for m in lines)
    assert re.fullmatch(r"\d+s|\d+m\d\ds", lines[0][8]) and lines[1][8] == "0s"
    assert "\r" not in err and "train:" not in err, "no tqdm bar in a log file"


def test_a_progress_line_at_least_every_30_seconds(tmp_path: Path, capsys, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(reporting, "_now", lambda: clock[0])
    trainer = make_trainer(tmp_path, max_steps=6, logging_steps=100)
    step = trainer._step

    def slow_step(*args):  # each optimizer step takes 16 s of the reporter's clock
        clock[0] += 16
        return step(*args)

    monkeypatch.setattr(trainer, "_step", slow_step)
    trainer.train()
    lines = progress(capsys.readouterr().err)
    assert [int(m[1]) for m in lines] == [2, 4, 6]  # 32 s after the start, 32 s later, the last step's log line
    assert lines[0][7] == "0.2" and lines[0][8] == "1m04s"  # 8 samples in 32 s; 4 steps left at 16 s each


def test_the_summary_says_where_the_time_went(tmp_path: Path, capsys, monkeypatch) -> None:
    """Each phase is charged for its own work: an evaluation that takes 5 s of the clock is 5 s of `evaluation`."""
    offset = [0.0]
    real_clock = timing.time.perf_counter
    monkeypatch.setattr(timing.time, "perf_counter", lambda: real_clock() + offset[0])
    trainer = make_trainer(
        tmp_path, max_steps=4, eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=4
    )
    evaluate = trainer._evaluate_during_training

    def slow_evaluation():
        offset[0] += 5.0
        return evaluate()

    monkeypatch.setattr(trainer, "_evaluate_during_training", slow_evaluation)
    result = trainer.train()
    phases = result["seconds_by_phase"]
    assert list(phases) == [*timing.PHASES, "other"]
    assert 10.0 <= phases["evaluation"] <= 10.0 + result["train_seconds"]  # two evaluations of 5 s, plus their own work
    assert max(phases[name] for name in phases if name != "evaluation") < 5.0
    assert all(phases[name] > 0 for name in ("data", "forward", "backward", "optimizer", "checkpoints"))
    assert all(value >= 0 for value in phases.values())
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ofa: time by phase: ")]
    shown = re.findall(r"(\w+) (\d+\.\d) s \((\d+)%\)", line)
    assert [name for name, _, _ in shown] == list(phases)
    assert 98 <= sum(int(share) for _, _, share in shown) <= 102


def test_a_mixture_line_shows_each_task_loss(tmp_path: Path, capsys) -> None:
    make_mixture(tmp_path, max_steps=4, logging_steps=4).train()
    (line,) = progress(capsys.readouterr().err)
    assert re.fullmatch(r"(first|second) \d+\.\d\d( (first|second) \d+\.\d\d)?", line[5])


def test_evaluation_samples_carry_example_ids(tmp_path: Path, capsys) -> None:
    trainer = make_trainer(tmp_path, max_steps=2, eval_strategy="steps", eval_steps=2, num_sample_predictions=2)
    trainer.tasks[0].generation_config = as_generation_config(
        SearchSettings(beam=1, max_len_b=2, min_len=1), **special_token_ids(trainer.model.config)
    )
    trainer.train()
    err = capsys.readouterr().err
    shown = err.split("ofa: step 2 eval:")[1].splitlines()[1:3]
    assert [line.split(":")[0] for line in shown] == ["  0-0", "  1-0"], err
    assert all(" | " in line for line in shown)


def test_final_summary_shows_a_per_class_table(tmp_path: Path, capsys) -> None:
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_bytes(orjson.dumps({"id": "v-1", "prediction": "cat", "references": ["cat"]}) + b"\n")
    scores = {"accuracy": 75.0, "macro_f1": 60.0}
    for index in range(12):
        scores.update(
            {
                f"class/label{index}/precision": 50.0,
                f"class/label{index}/recall": 100.0,
                f"class/label{index}/f1": 66.67,
                f"class/label{index}/support": float(index + 1),
            }
        )
    show_samples({**scores, "checkpoint": "run/checkpoint-4", "split": "valid", "predictions": str(predictions)}, 1)
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0].startswith("ofa: run/checkpoint-4 on valid: accuracy=75.00, macro_f1=60.00;") and "class/" not in err[0]
    )
    assert err[1].split() == ["class", "precision", "recall", "f1", "support"]
    assert err[2].split() == ["label11", "50.00", "100.00", "66.67", "12"]  # most support first
    assert len(err[2:12]) == 10 and err[12].strip() == "... and 2 more classes"
    assert len({len(line) for line in err[1:12]}) == 1, "aligned columns"
    assert err[13].startswith("  v-1: cat")


def _recipe(tmp_path: Path, **training) -> Path:
    write_muge(tmp_path / "MUGE", "train", 4)
    write_muge(tmp_path / "MUGE", "valid", 2)
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "caption", "lang": "zh"},
        "data": {"reader": {"name": "muge", "folder": "MUGE"}},
        "metrics": [{"name": "caption", "tokenize": "zh"}],
        "generation": {"num_beams": 1, "max_new_tokens": 2},
        "training": {"output_dir": "run", "per_device_train_batch_size": 2, "logging_steps": 1, **training},
    }
    path = tmp_path / "recipe.json"
    path.write_bytes(orjson.dumps(recipe))
    return path


def test_ofa_eval_writes_tensorboard_scalars_and_a_log_line(tmp_path: Path, capsys) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = _recipe(tmp_path)
    checkpoint = tmp_path / "run" / "checkpoint-7"
    tiny_checkpoint(checkpoint)
    (checkpoint / "trainer_state.json").write_bytes(orjson.dumps({"step": 7}))
    assert main(["eval", str(recipe), "--checkpoint", str(checkpoint)]) == 0
    result = orjson.loads(capsys.readouterr().out)
    events = EventAccumulator(str(tmp_path / "run" / "runs"))
    events.Reload()
    assert "eval/cider" in events.Tags()["scalars"]
    (cider,) = events.Scalars("eval/cider")
    assert cider.step == 7 and cider.value == pytest.approx(result["cider"])
    (line,) = [orjson.loads(row) for row in (tmp_path / "run" / "log.jsonl").read_bytes().splitlines()]
    assert line["split"] == "eval" and line["step"] == 7 and line["checkpoint"] == str(checkpoint)
    assert line["cider"] == pytest.approx(result["cider"])

    quiet = ["--set", "training.report_to=none", "--set", f"output_dir={tmp_path / 'quiet'}"]
    assert main(["eval", str(recipe), "--checkpoint", str(tmp_path / "model"), *quiet]) == 0
    capsys.readouterr()
    assert not (tmp_path / "quiet" / "runs").exists()
    (line,) = [orjson.loads(row) for row in (tmp_path / "quiet" / "log.jsonl").read_bytes().splitlines()]
    assert line["step"] == 0 and line["checkpoint"] == str(tmp_path / "model")


def test_under_torchrun_only_rank_0_prints(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, max_steps=2, eval_strategy="steps", eval_steps=2, save_steps=2, report_to="none")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "ofa_core",
            "run",
            str(recipe),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)  # exactly one JSON document
    assert summary["steps"] == 2 and summary["final_eval"]["examples"] == 2
    err = done.stderr
    assert err.count("ofa: 2 steps") == 1 and err.count("ofa: step 2 eval:") == 1 and err.count(" on valid: ") == 1
    # rank 0 only; searched anywhere in the text, as rank 1's warnings may land mid-line in the shared stderr
    assert re.findall(r"ofa: step (\d+)/2 \(", err) == ["1", "2"], err
