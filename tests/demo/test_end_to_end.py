"""The demo recipes as a user runs them, shortened: captioning from scratch, then VQA and classification starting
from the caption run's directory. Each run ends by scoring its best checkpoint and writing its predictions.

At this size (64 photos, seconds of training) captioning already beats the untrained model; telling objects
apart and answering by question type take a few hundred full-size steps (docs/demo.md has the full runs'
scores), so the later steps are held to learning their training data."""

from __future__ import annotations

import orjson

from ofa_core.cli import main

from .conftest import RECIPES

SHORT = ["--set", "training.per_device_train_batch_size=8", "--set", "training.learning_rate=1e-3", "--set", "training.warmup_steps=10",
         "--set", "training.logging_steps=10", "--set", "training.report_to=[]"]


def steps(count: int) -> list[str]:
    return [f"--set=training.{key}={count}" for key in ("max_steps", "eval_steps", "save_steps")]


def cli(args: list[str], capsys) -> tuple[dict, str]:
    assert main(args) == 0
    captured = capsys.readouterr()
    return orjson.loads(captured.out), captured.err


def losses(run) -> list[float]:
    return [row["loss"] for row in map(orjson.loads, (run / "log.jsonl").open("rb")) if row["split"] == "train"]


def test_the_demo_trains_captions_from_scratch_then_answers_and_classifies_from_that_run(small_demo, tmp_path, capsys):
    runs = tmp_path / "runs"
    caption = str(RECIPES / "demo_caption.json")
    untrained, _ = cli(["eval", caption, "--checkpoint", str(small_demo / "model"), "--set", f"output_dir={runs / 'untrained'}"], capsys)
    summary, err = cli(["run", caption, *SHORT, *steps(80), "--set", f"output_dir={runs / 'demo_caption'}"], capsys)
    final = summary["final_eval"]
    assert final["checkpoint"] == summary["best_checkpoint"] == str(runs / "demo_caption" / "checkpoint-80")
    assert final["cider"] > untrained["cider"] + 20, (untrained["cider"], final["cider"])
    assert len((runs / "demo_caption" / "predictions-valid-checkpoint-80.jsonl").read_bytes().splitlines()) == 12
    assert err.count("<- references:") == 4

    for recipe, metric, examples in (("demo_vqa", "vqa_acc", 60), ("demo_classification", "accuracy", 12)):
        summary, _ = cli(["run", str(RECIPES / f"{recipe}.json"), *SHORT, *steps(30), "--set", f"model.checkpoint={runs / 'demo_caption'}",
                          "--set", f"output_dir={runs / recipe}"], capsys)
        assert metric in summary["final_eval"] and summary["final_eval"]["examples"] == examples
        assert (runs / recipe / f"predictions-valid-checkpoint-30.jsonl").is_file()
        trained = losses(runs / recipe)
        assert trained[-1] < 0.8 * trained[0], (recipe, trained)
