"""The `summarization` task end to end on a tiny model: text-only training (blank images, patch masks off) on
generated articles beats the untrained model in ROUGE, and `ofa predict` summarises a TSV of articles."""

from __future__ import annotations

from pathlib import Path

import orjson
from task_training import quick_training, untrained_and_trained

from ofa_core.cli import main
from ofa_core.testing import run_recipe, tiny_checkpoint

ROWS = [
    ("there was a red car on the road today", "red car"),
    ("a big dog ran in the park all day", "big dog"),
    ("the cat slept on a warm mat", "cat sleeps"),
    ("the sun was hot over the city", "hot sun"),
]


def test_training_on_generated_articles_beats_the_untrained_model(tmp_path, capsys):
    (tmp_path / "train.tsv").write_text("".join(f"{source}\t{summary}\n" for source, summary in ROWS), encoding="utf-8")
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "name": "summary_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "summarization"},
        "data": {
            "reader": {"name": "summary_tsv", "train": "train.tsv", "valid": "train.tsv"},
            "max_source_length": 128,
            "max_target_length": 16,
        },
        "generation": {"num_beams": 2, "max_new_tokens": 12, "no_repeat_ngram_size": 3},
        "training": quick_training(
            learning_rate=5e-3, per_device_train_batch_size=4, per_device_eval_batch_size=4, logging_steps=100
        ),
    }
    run_recipe(recipe, tmp_path, max_steps=40)

    checkpoint = max((tmp_path / "run").glob("checkpoint-*"))
    before, after = untrained_and_trained(tmp_path, capsys)
    assert after["examples"] == 4 and after["dropped"] == 0
    for key in ("rouge1", "rougeL"):
        assert after[key] >= before[key] + 40, (before, after)  # 62.5 against 0 when written

    # `ofa predict` on text only (a TSV whose image column is empty), with the recipe's search, summarises as eval did.
    evaluated = [orjson.loads(line) for line in Path(after["predictions"]).read_bytes().splitlines()]
    (expected,) = [row["prediction"] for row in evaluated if row["references"] == [ROWS[0][1]]]
    (tmp_path / "inputs.tsv").write_text(f"image\tsource\n\t{ROWS[0][0]}\n", encoding="utf-8")
    out = tmp_path / "predicted.jsonl"
    assert (
        main(
            [
                "predict",
                "--model",
                str(checkpoint),
                "--task",
                "summarization",
                str(tmp_path / "inputs.tsv"),
                "--generation",
                "num_beams=2",
                "--generation",
                "max_new_tokens=12",
                "--generation",
                "no_repeat_ngram_size=3",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert orjson.loads(out.read_bytes())["prediction"] == expected
