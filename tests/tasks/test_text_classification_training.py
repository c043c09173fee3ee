"""The `text_classification` task end to end on a tiny model: text-only training (blank images, patch masks off)
on generated sentences beats the untrained model, and `ofa predict` reads the answer after the prompt."""

from __future__ import annotations

from pathlib import Path

import orjson
from task_training import quick_training

from ofa_core.cli import main
from ofa_core.testing import run_recipe, tiny_checkpoint

# SST-2 layout (sentence, label 0/1): the label is decided by one word.
ROWS = [
    ("i like it", 1),
    ("i hate it", 0),
    ("we like this", 1),
    ("we hate this", 0),
    ("they like that", 1),
    ("they hate that", 0),
]


def evaluate(tmp_path: Path, checkpoint: Path, capsys) -> tuple[dict, list[dict]]:
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", str(checkpoint)]) == 0
    scores = orjson.loads(capsys.readouterr().out)
    return scores, [orjson.loads(line) for line in Path(scores["predictions"]).read_bytes().splitlines()]


def test_training_on_generated_sentences_beats_the_untrained_model(tmp_path, capsys):
    (tmp_path / "train.tsv").write_text("".join(f"{text}\t{label}\n" for text, label in ROWS), encoding="utf-8")
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "name": "sst2_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "text_classification", "options": {"dataset": "sst2"}},
        "data": {
            "reader": {"name": "glue_tsv", "columns": [0, 1], "train": "train.tsv", "valid": "train.tsv"},
            "max_source_length": 128,
        },
        "training": quick_training(learning_rate=5e-3, per_device_eval_batch_size=6, logging_steps=100),
    }
    run_recipe(recipe, tmp_path, max_steps=20)
    before, _ = evaluate(tmp_path, tmp_path / "model", capsys)
    after, rows = evaluate(tmp_path, max((tmp_path / "run").glob("checkpoint-*")), capsys)
    assert before["examples"] == after["examples"] == 6 and after["dropped"] == 0
    assert after["accuracy"] == 100.0 > before["accuracy"], (before, after)
    assert {row["prediction"] for row in rows} == {"positive", "negative"}

    # `ofa predict` on text only: a TSV whose image column is empty.
    (tmp_path / "inputs.tsv").write_text("image\tsentence\n\tyou like it\n\tyou hate it\n", encoding="utf-8")
    out = tmp_path / "predicted.jsonl"
    checkpoint = max((tmp_path / "run").glob("checkpoint-*"))
    assert (
        main(
            [
                "predict",
                "--model",
                str(checkpoint),
                "--task",
                "text_classification",
                str(tmp_path / "inputs.tsv"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    predicted = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [row["prediction"] for row in predicted] == ["positive", "negative"]
    assert predicted[0]["source"] == ' is the sentiment of text " you like it " positive or negative?'
