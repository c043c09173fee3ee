"""The `grounding` task end to end on a tiny model: training on generated boxes beats the untrained model,
evaluation and `ofa predict` run batches of several images of different sizes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from PIL import Image, ImageDraw
from task_training import quick_training

from ofa_core.cli import main
from ofa_core.testing import run_recipe, tiny_checkpoint

# A red rectangle in one of four places, on images of four sizes (boxes as fractions of the image).
PLACES = [(0.1, 0.1, 0.45, 0.45), (0.55, 0.1, 0.9, 0.45), (0.1, 0.55, 0.45, 0.9), (0.55, 0.55, 0.9, 0.9)]
SIZES = [(80, 60), (60, 80), (64, 64), (96, 48)]


@pytest.fixture
def boxes_recipe(tmp_path) -> dict:
    lines = []
    for index, ((width, height), place) in enumerate(zip(SIZES, PLACES)):
        box = [place[0] * width, place[1] * height, place[2] * width, place[3] * height]
        image = Image.new("RGB", (width, height), (200, 200, 200))
        ImageDraw.Draw(image).rectangle(box, fill=(220, 30, 30))
        image.save(tmp_path / f"{index}.png")
        lines.append({"id": str(index), "image": f"{index}.png", "text": "The red box", "box": box})
    (tmp_path / "boxes.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    tiny_checkpoint(tmp_path / "model")
    return {
        "name": "grounding_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "grounding", "lang": "en"},
        "data": {"reader": {"name": "grounding_jsonl", "train": "boxes.jsonl", "valid": "boxes.jsonl"}},
        "training": quick_training(
            learning_rate=5e-3, per_device_train_batch_size=4, per_device_eval_batch_size=4, logging_steps=20
        ),
    }


def evaluate(tmp_path: Path, checkpoint: Path, capsys) -> tuple[dict, list[dict]]:
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", str(checkpoint)]) == 0
    scores = orjson.loads(capsys.readouterr().out)
    return scores, [orjson.loads(line) for line in Path(scores["predictions"]).read_bytes().splitlines()]


def test_training_on_generated_boxes_beats_the_untrained_model(boxes_recipe, tmp_path, capsys):
    run_recipe(boxes_recipe, tmp_path, max_steps=40)
    before, _ = evaluate(tmp_path, tmp_path / "model", capsys)
    after, rows = evaluate(tmp_path, max((tmp_path / "run").glob("checkpoint-*")), capsys)
    assert after["examples"] == 4 and after["acc@0.5"] >= before["acc@0.5"] + 50, (before, after)
    assert after["miou"] > before["miou"] + 40, (before, after)
    for row, (width, height) in zip(sorted(rows, key=lambda row: row["id"]), SIZES):  # pixels of each original image
        assert len(row["prediction"]) == 4 and all(isinstance(value, float) for value in row["prediction"]), row
        assert [len(reference) for reference in row["references"]] == [4], row  # the reference box, as numbers
        x0, y0, x1, y1 = row["prediction"]
        assert max(x0, x1) <= width and max(y0, y1) <= height and min(x0, y0, x1, y1) >= 0, row


def predict(tmp_path: Path, name: str, *argv: str) -> list[dict]:
    images = [str(tmp_path / f"{index}.png") for index in range(len(SIZES))]
    out = tmp_path / f"{name}.jsonl"
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "model"),
                "--task",
                "grounding",
                "--field",
                "text=the red box",
                *argv,
                *images,
                "-o",
                str(out),
            ]
        )
        == 0
    )
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_predict_in_batches_matches_one_at_a_time_and_stays_on_the_bins(boxes_recipe, tmp_path):
    one, batched = predict(tmp_path, "one", "--batch-size", "1"), predict(tmp_path, "batched", "--batch-size", "4")
    assert [row["prediction"] for row in batched] == [row["prediction"] for row in one]
    for row, (width, height) in zip(batched, SIZES):  # untrained, yet every answer is a box on its own image
        assert len(row["prediction"]) == 4 and all(isinstance(value, float) for value in row["prediction"]), row
        x0, y0, x1, y1 = row["prediction"]
        assert max(x0, x1) <= width and max(y0, y1) <= height and min(x0, y0, x1, y1) >= 0, row
    free = predict(tmp_path, "free", "--batch-size", "4", "--option", "restrict_to_bins=false")
    assert any(row["text"].count("<bin_") < 4 and row["prediction"] is None for row in free), free  # text: no box


def _is_box_on(box, size) -> bool:
    """Four floats inside an image of `size`: a box a program can use without parsing text."""
    width, height = size
    return (
        len(box) == 4
        and all(isinstance(value, float) for value in box)
        and max(box[0], box[2]) <= width
        and max(box[1], box[3]) <= height
        and min(box) >= 0
    )


def test_the_pipeline_and_the_http_api_answer_with_boxes_as_numbers(boxes_recipe, tmp_path):
    from fastapi.testclient import TestClient

    import ofa_core
    from ofa_core.inference.loading import load_model
    from ofa_core.registry import load_plugins
    from ofa_core.serving.app import ServeSettings, create_app
    from ofa_core.serving.requests import served_tasks

    images = [str(tmp_path / f"{index}.png") for index in range(len(SIZES))]
    answers = ofa_core.pipeline("grounding", model=tmp_path / "model", lang="en")(
        images, text=["the red box"] * len(images)
    )
    for answer, size in zip(answers, SIZES):
        assert _is_box_on(answer["prediction"], size), answer
    app = create_app(
        *load_model(tmp_path / "model"),
        served_tasks(load_plugins().registry(), ["grounding"]),
        ServeSettings(),
        model_name="tiny",
    )
    with TestClient(app) as client:
        body = client.post(
            "/v1/predict",
            files={"image": ("0.png", Path(images[0]).read_bytes(), "image/png")},
            data={"task": "grounding", "expression": "the red box", "lang": "en"},
        ).json()
    assert "prediction" in body, body
    assert _is_box_on(body["prediction"], SIZES[0]), body
    assert body["box"] == pytest.approx(body["prediction"], abs=0.01), body  # the task's own box, rounded
