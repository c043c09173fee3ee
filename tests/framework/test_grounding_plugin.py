"""The example plugin, pip-installed, through its own tests and a recipe end to end on tiny data."""

import subprocess
import sys

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.plugin.testing import fake_image, run_recipe, tiny_checkpoint

from .conftest import GROUNDING


def test_the_plugins_own_tests_pass(grounding_installed):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:warnings", "-p", "no:cacheprovider",
                             str(GROUNDING / "tests")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def grounding_data(tmp_path) -> dict:
    """Four images with one box each, as train and valid JSONL, and a tiny model directory."""
    (tmp_path / "images").mkdir()
    lines = []
    for index in range(4):
        fake_image(index, (48, 32)).save(tmp_path / "images" / f"{index}.png")
        lines.append({"id": str(index), "image": f"images/{index}.png", "text": ["a red car", "a dog"][index % 2],
                      "box": [2 + index, 3, 30, 20 + index]})
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    (tmp_path / "valid.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines[:2]))
    tiny_checkpoint(tmp_path / "model")
    return {
        "name": "grounding_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "grounding", "lang": "zh"},
        "data": {"reader": {"name": "grounding_jsonl", "train": "train.jsonl", "valid": "valid.jsonl"}},
        "generation": {"num_beams": 2, "max_new_tokens": 5, "min_new_tokens": 4},
        "training": {"per_device_train_batch_size": 2, "per_device_eval_batch_size": 2, "learning_rate": 1e-3,
                     "logging_steps": 1, "save_steps": 2, "report_to": [], "seed": 0},
    }


def test_recipe_trains_and_evaluates_end_to_end(grounding_installed, grounding_data, tmp_path, capsys):
    summary = run_recipe(grounding_data, tmp_path, max_steps=2)
    assert isinstance(summary, dict)
    checkpoints = sorted((tmp_path / "run").glob("checkpoint-*"))
    assert checkpoints, f"no checkpoint in {tmp_path / 'run'}"
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", str(checkpoints[-1])]) == 0
    metrics = orjson.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["acc@0.5"] <= 1.0 and metrics["examples"] == 2
    predictions = [orjson.loads(line) for line in open(metrics["predictions"], "rb")]
    assert len(predictions) == 2
