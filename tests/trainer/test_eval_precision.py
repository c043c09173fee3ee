"""Every evaluation record states the precision its numbers were computed in. `ofa eval` computes in `--precision`
(default fp32) and never under the recipe's training `mixed_precision`; an evaluation during training under
autocast says so in its log line, its stderr line and its TensorBoard section.

A forward hook on every module records whether autocast was on while the model ran, so a record saying fp32
over numbers computed under autocast fails here."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import torch

from ofa_core.cli import main
from ofa_core.model.precision import cpu_has_native_bf16
from ofa_core.testing import tiny_checkpoint

from .test_eval_needs import official_setup
from .test_recipe import write_muge


@pytest.fixture
def autocast_seen() -> Iterator[list[bool]]:
    """Whether CPU autocast was on, at every module's forward while the fixture is active."""
    seen: list[bool] = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append(torch.is_autocast_enabled("cpu"))
    )
    yield seen
    handle.remove()


def log_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize(("recipe", "training_precision"), [("snli_ve", "bf16"), ("caption_coco", "fp16")])
def test_ofa_eval_computes_and_records_fp32_whatever_the_recipe_trains_in(
    recipe, training_precision, tmp_path, capsys, autocast_seen
) -> None:
    path, rows = official_setup(tmp_path, recipe)
    assert orjson.loads(path.read_bytes())["training"]["mixed_precision"] == training_precision
    model = tiny_checkpoint(tmp_path / "model")
    out = tmp_path / "predictions.jsonl"
    assert (
        main(
            [
                "eval",
                str(path),
                "--checkpoint",
                str(model),
                "--set",
                f"data.reader.valid={rows}",
                "--predictions",
                str(out),
            ]
        )
        == 0
    ), capsys.readouterr().err
    result = orjson.loads(capsys.readouterr().out)
    records = {
        "result": result["precision"],
        "meta": orjson.loads((tmp_path / "predictions.jsonl.meta.json").read_bytes())["precision"],
        "log": log_lines(next((tmp_path / "runs").glob("*/log.jsonl")))[-1]["precision"],
    }
    assert autocast_seen and not any(autocast_seen), "evaluated under autocast"
    assert records == dict.fromkeys(records, "fp32")


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="--precision bf16 is refused on a CPU without native bf16")
def test_ofa_eval_in_bf16_records_bf16_and_casts_instead_of_autocasting(tmp_path, capsys, autocast_seen) -> None:
    path, rows = official_setup(tmp_path, "glue_rte")
    model = tiny_checkpoint(tmp_path / "model")
    assert (
        main(
            [
                "eval",
                str(path),
                "--checkpoint",
                str(model),
                "--set",
                f"data.reader.valid={rows}",
                "--predictions",
                str(tmp_path / "p.jsonl"),
                "--precision",
                "bf16",
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert orjson.loads(capsys.readouterr().out)["precision"] == "bf16"
    assert not any(autocast_seen)


def _training_recipe(tmp_path: Path, mixed_precision: str) -> Path:
    write_muge(tmp_path / "MUGE", "train", 4)
    write_muge(tmp_path / "MUGE", "valid", 2)
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "caption", "lang": "zh"},
        "data": {"reader": {"name": "muge", "folder": "MUGE"}},
        "metrics": [{"name": "caption", "tokenize": "zh"}],
        "generation": {"num_beams": 1, "max_new_tokens": 2},
        "training": {
            "output_dir": "run",
            "per_device_train_batch_size": 2,
            "logging_steps": 1,
            "max_steps": 1,
            "eval_strategy": "steps",
            "eval_steps": 1,
            "save_strategy": "no",
            "mixed_precision": mixed_precision,
        },
    }
    path = tmp_path / "recipe.json"
    path.write_bytes(orjson.dumps(recipe))
    return path


@pytest.mark.parametrize(
    ("mixed_precision", "recorded", "tag"), [("bf16", "bf16-autocast", "eval-bf16-autocast"), ("no", "fp32", "eval")]
)
def test_evaluation_during_training_says_what_it_computed_in(
    mixed_precision, recorded, tag, tmp_path, capsys, monkeypatch, autocast_seen
) -> None:
    """It may run under the training precision's autocast, and then every record of it says so."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ofa_core.trainer.loop import Trainer

    during_eval: list[bool] = []  # autocast at each forward inside the trainer's evaluation
    original = Trainer.evaluate

    def evaluate(self, *args, **kwargs):
        first = len(autocast_seen)
        try:
            return original(self, *args, **kwargs)
        finally:
            during_eval.extend(autocast_seen[first:])

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    assert main(["run", str(_training_recipe(tmp_path, mixed_precision))]) == 0
    err = capsys.readouterr().err
    assert during_eval and all(state == (mixed_precision != "no") for state in during_eval)
    (line,) = [line for line in log_lines(tmp_path / "run" / "log.jsonl") if line["split"] == "eval"]
    assert line["precision"] == recorded
    assert f"ofa: step 1 eval{f' ({recorded})' if recorded != 'fp32' else ''}: " in err
    events = EventAccumulator(str(tmp_path / "run" / "runs"))
    events.Reload()
    assert f"{tag}/cider" in events.Tags()["scalars"]
    assert not [name for name in events.Tags()["scalars"] if name.startswith("eval") and not name.startswith(f"{tag}/")]


def test_predict_and_serve_records_match_what_the_model_ran_in(tmp_path, capsys, autocast_seen) -> None:
    """`ofa predict`'s meta JSON and the server's `/health` say fp32, and nothing ran under autocast."""
    from fastapi.testclient import TestClient

    from ofa_core.inference.loading import load_for_inference
    from ofa_core.registry import load_plugins
    from ofa_core.serving.app import ServeSettings, create_app
    from ofa_core.serving.requests import served_tasks
    from ofa_core.testing import fake_image

    model = tiny_checkpoint(tmp_path / "model")
    fake_image(0).save(tmp_path / "photo.png")
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model),
                "--task",
                "caption",
                "--generation",
                "max_new_tokens=2",
                str(tmp_path / "photo.png"),
                "-o",
                str(out),
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert orjson.loads((tmp_path / "out.jsonl.meta.json").read_bytes())["precision"] == "fp32"
    loaded = load_for_inference(model, "fp32", "cpu")
    app = create_app(
        loaded.model,
        loaded.processor,
        served_tasks(load_plugins().registry(), ["caption"]),
        ServeSettings(max_wait_ms=1),
        model_name="tiny",
        precision=loaded.precision.precision,
    )
    predicted = len(autocast_seen)
    image = base64.b64encode((tmp_path / "photo.png").read_bytes()).decode()
    with TestClient(app) as client:
        assert client.get("/health").json()["precision"] == "fp32"
        answer = client.post(
            "/v1/predict", json={"task": "caption", "image": image, "generation": {"max_new_tokens": 2}}
        )
    assert answer.status_code == 200, answer.text
    assert 0 < predicted < len(autocast_seen) and not any(autocast_seen)
