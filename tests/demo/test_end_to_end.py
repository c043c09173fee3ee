"""The demo recipes as a user runs them, shortened: captioning from scratch, then VQA and classification starting
from the caption run's directory. Each run ends by scoring its best checkpoint and writing its predictions.

At this size (64 photos, seconds of training) every step beats the untrained model, by less than the
full-size runs in docs/demo.md: VQA trains with its loss restricted to the candidate answers and a
higher learning rate to get there in a hundred-odd steps."""

from __future__ import annotations

import orjson

from ofa_core.cli import main
from tests.report.pages import assert_complete_and_worst_first, read_sections

from .conftest import RECIPES

SHORT = [
    "--set",
    "training.per_device_train_batch_size=8",
    "--set",
    "training.learning_rate=1e-3",
    "--set",
    "training.warmup_steps=10",
    "--set",
    "training.logging_steps=10",
    "--set",
    "training.report_to=[]",
]


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
    untrained, _ = cli(
        ["eval", caption, "--checkpoint", str(small_demo / "model"), "--set", f"output_dir={runs / 'untrained'}"],
        capsys,
    )
    summary, err = cli(["run", caption, *SHORT, *steps(80), "--set", f"output_dir={runs / 'demo_caption'}"], capsys)
    final = summary["final_eval"]
    assert final["checkpoint"] == summary["best_checkpoint"] == str(runs / "demo_caption" / "checkpoint-80")
    assert final["cider"] > untrained["cider"] + 20, (untrained["cider"], final["cider"])
    assert len((runs / "demo_caption" / "predictions-valid-checkpoint-80.jsonl").read_bytes().splitlines()) == 12
    assert err.count("<- references:") == 4
    report = runs / "demo_caption" / "report.html"  # every prediction with its photo and score, and the curves
    assert final["report"] == str(report) and f"report in {report}" in err
    (section,) = read_sections(report.read_text())
    assert len(section["cards"]) == 12 and '<svg class="curve"' in report.read_text()
    assert_complete_and_worst_first(section)  # each photo, caption, references and own CIDEr-D, worst first

    assert "Loading weights" not in err and "Writing model shards" not in err, "transformers' own bars stay quiet"

    later = {
        "demo_vqa": (
            "vqa_acc",
            60,
            150,
            ["--set", "training.learning_rate=2e-3", "--set", "task.options.restrict_loss=true"],
        ),
        "demo_classification": ("accuracy", 12, 100, []),
    }
    for recipe, (metric, examples, count, extra) in later.items():
        path = str(RECIPES / f"{recipe}.json")
        init = ["--set", f"model.checkpoint={small_demo / 'model'}"]
        untrained, _ = cli(
            [
                "eval",
                path,
                "--checkpoint",
                str(small_demo / "model"),
                *init,
                "--set",
                f"output_dir={runs / f'untrained-{recipe}'}",
            ],
            capsys,
        )
        summary, _ = cli(
            [
                "run",
                path,
                *SHORT,
                *steps(count),
                *extra,
                "--set",
                f"model.checkpoint={runs / 'demo_caption'}",
                "--set",
                f"output_dir={runs / recipe}",
            ],
            capsys,
        )
        final = summary["final_eval"]
        assert (
            final["examples"] == examples and (runs / recipe / f"predictions-valid-checkpoint-{count}.jsonl").is_file()
        )
        assert final[metric] > untrained[metric] + 10, (recipe, untrained[metric], final[metric])
        (section,) = read_sections((runs / recipe / "report.html").read_text())
        assert len(section["cards"]) == examples
        assert_complete_and_worst_first(section)
        trained = losses(runs / recipe)
        assert trained[-1] < 0.8 * trained[0], (recipe, trained)
