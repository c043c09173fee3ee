"""The example plugin, pip-installed, through its own tests and a recipe end to end on tiny data."""

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.testing import fake_image, run_recipe, tiny_checkpoint

from .conftest import COUNTING


def test_the_plugins_own_tests_pass(counting_installed):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:warnings", "-p", "no:cacheprovider", str(COUNTING / "tests")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def counting_data(tmp_path) -> dict:
    """Four images with a count each, as train and valid JSONL, and a tiny model directory."""
    (tmp_path / "images").mkdir()
    lines = []
    for index in range(4):
        fake_image(index, (48, 32)).save(tmp_path / "images" / f"{index}.png")
        lines.append(
            {"id": str(index), "image": f"images/{index}.png", "object": ["cars", "dogs"][index % 2], "count": index}
        )
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    (tmp_path / "valid.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines[:2]))
    tiny_checkpoint(tmp_path / "model")
    return {
        "name": "counting_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "counting", "lang": "en", "options": {"max_count": 5}},
        "data": {"reader": {"name": "counting_jsonl", "train": "train.jsonl", "valid": "valid.jsonl"}},
        "training": {
            "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 2,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "save_steps": 2,
            "report_to": [],
            "seed": 0,
        },
    }


def test_recipe_trains_and_evaluates_end_to_end(counting_installed, counting_data, tmp_path, capsys):
    summary = run_recipe(counting_data, tmp_path, max_steps=2)
    assert summary["steps"] == 2
    checkpoints = sorted((tmp_path / "run").glob("checkpoint-*"))
    assert checkpoints, f"no checkpoint in {tmp_path / 'run'}"
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", str(checkpoints[-1])]) == 0
    metrics = orjson.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["accuracy"] <= metrics["within_one"] <= 100.0 and metrics["examples"] == 2
    predictions = [orjson.loads(line) for line in Path(metrics["predictions"]).read_bytes().splitlines()]
    assert len(predictions) == 2 and all(row["prediction"] in {"0", "1", "2", "3", "4", "5"} for row in predictions)
