"""The `ocr` task end to end on a tiny model: training on generated text-line images of several shapes (each padded
to a square by the task) beats the untrained model, and `ofa predict` reads an image file."""

from __future__ import annotations

from pathlib import Path

import orjson
from PIL import Image, ImageDraw
from task_training import quick_training, untrained_and_trained

from ofa_core.cli import main
from ofa_core.testing import run_recipe, tiny_checkpoint

# (label, size, colour): landscape and portrait "text lines" the model must tell apart; labels use the tiny vocabulary.
LINES = [
    ("红色的车", (120, 30), (220, 30, 30)),
    ("一只猫", (30, 100), (30, 30, 220)),
    ("狗", (80, 40), (30, 200, 30)),
    ("大小", (40, 90), (240, 240, 240)),
]


def test_training_on_generated_lines_beats_the_untrained_model(tmp_path, capsys):
    rows = []
    for index, (label, size, colour) in enumerate(LINES):
        image = Image.new("RGB", size, (90, 90, 90))
        ImageDraw.Draw(image).rectangle([2, 2, size[0] - 3, size[1] - 3], fill=colour)
        image.save(tmp_path / f"{index}.png")
        rows.append({"id": str(index), "image": f"{index}.png", "text": label})
    (tmp_path / "lines.jsonl").write_bytes(b"\n".join(orjson.dumps(row) for row in rows))
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "name": "ocr_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "ocr", "options": {"patch_image_size": 64}},  # the tiny model's resolution
        "data": {
            "reader": {"name": "ocr_jsonl", "train": "lines.jsonl", "valid": "lines.jsonl"},
            "max_target_length": 16,
        },
        "generation": {"num_beams": 2, "max_new_tokens": 8},
        "training": quick_training(
            learning_rate=5e-3, per_device_train_batch_size=4, per_device_eval_batch_size=4, logging_steps=100
        ),
    }
    run_recipe(recipe, tmp_path, max_steps=30)

    checkpoint = max((tmp_path / "run").glob("checkpoint-*"))
    before, after = untrained_and_trained(tmp_path, capsys)
    assert after["examples"] == 4 and after["dropped"] == 0
    assert after["accuracy"] >= before["accuracy"] + 50 and after["ned"] > before["ned"], (before, after)

    # predict on an image file, with the recipe's search, reads the line as the evaluation did
    evaluated = {
        row["id"]: row["prediction"] for row in map(orjson.loads, Path(after["predictions"]).read_bytes().splitlines())
    }
    out = tmp_path / "predicted.jsonl"
    assert (
        main(
            [
                "predict",
                "--model",
                str(checkpoint),
                "--task",
                "ocr",
                "--option",
                "patch_image_size=64",
                "--generation",
                "num_beams=2",
                "--generation",
                "max_new_tokens=8",
                str(tmp_path / "0.png"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert orjson.loads(out.read_bytes())["prediction"] == evaluated["0"]
