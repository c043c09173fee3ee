"""The built-in caption task through the registry and a recipe, on generated MUGE-format data."""

from __future__ import annotations

import base64
import io

import orjson
import pytest
from PIL import Image
from task_training import quick_training

from ofa_core.cli import main
from ofa_core.testing import registry_with, run_recipe, tiny_checkpoint

# Three kinds of "product photo", each with its own captions (characters from the tiny vocabulary).
KINDS = {
    (220, 30, 30): ["一只红色的猫", "红色的猫"],
    (30, 200, 40): ["一只狗在车上", "狗在车上"],
    (40, 40, 220): ["大的人在左", "人在左"],
}


def photo(colour, seed: int) -> str:
    image = Image.new("RGB", (48, 40), colour)
    image.putpixel((seed % 48, seed % 40), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def write_split(folder, split: str, per_kind: int) -> None:
    rows, lines = [], []
    for kind, (colour, captions) in enumerate(KINDS.items()):
        for copy in range(per_kind):
            image_id = f"{split}{kind}{copy:02d}"
            rows.append(f"{image_id}\t{photo(colour, copy)}\n")
            lines.append(orjson.dumps({"image_id": image_id, "text": captions}))
    (folder / f"IC_{split}.tsv").write_text("".join(rows), encoding="utf-8")
    (folder / f"IC_{split}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


@pytest.fixture
def muge_recipe(tmp_path) -> dict:
    data = tmp_path / "muge"
    data.mkdir()
    write_split(data, "train", 4)
    write_split(data, "valid", 1)
    tiny_checkpoint(tmp_path / "model")
    return {
        "name": "caption_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "caption", "lang": "zh"},
        "data": {"reader": {"name": "muge", "folder": "muge"}, "max_target_length": 16},
        "metrics": [{"name": "caption", "tokenize": "zh"}],
        "generation": {"num_beams": 2, "max_new_tokens": 8, "no_repeat_ngram_size": 3},
        "training": quick_training(learning_rate=3e-3, per_device_train_batch_size=8),
    }


def test_caption_components_are_registered_with_the_official_prompts():
    from ofa_tasks.caption import plugin

    registry = registry_with(plugin)
    assert registry.prompts.get("caption.en").source == " what does the image describe?"
    assert registry.prompts.get("caption.zh").source == "图片描述了什么内容?"
    task = registry.tasks.get("caption")
    assert task.reader == "muge" and task.metrics == ("caption",)
    assert {"muge", "ofa_caption_tsv"} <= set(registry.readers.names())


def evaluate(recipe_path, checkpoint, capsys) -> dict:
    assert main(["eval", str(recipe_path), "--checkpoint", str(checkpoint)]) == 0
    return orjson.loads(capsys.readouterr().out)


def test_training_on_muge_data_beats_the_untrained_model(muge_recipe, tmp_path, capsys):
    muge_recipe["training"].update(eval_strategy="steps", eval_steps=60, num_sample_predictions=2)
    run_recipe(muge_recipe, tmp_path, max_steps=60)
    shown = capsys.readouterr().err
    assert "step 60 eval: cider=" in shown and " | " in shown.split("step 60 eval:")[1], (
        "evaluation shows scores and samples"
    )
    recipe_path = tmp_path / "recipe.json"
    before = evaluate(recipe_path, tmp_path / "model", capsys)
    checkpoint = sorted((tmp_path / "run").glob("checkpoint-*"))[-1]
    after = evaluate(recipe_path, checkpoint, capsys)
    assert after["examples"] == before["examples"] == 3
    assert after["cider"] > before["cider"] + 50, (before, after)


def test_muge_recipe_resolves_once_weights_and_data_exist(muge_recipe, tmp_path, capsys):
    """recipes/muge_caption.json is the seed's LiT run: it validates against a converted model and MUGE folder."""
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "muge_caption.json"
    settings = orjson.loads(recipe.read_bytes())["training"]
    assert (settings["per_device_train_batch_size"], settings["learning_rate"], settings["warmup_steps"]) == (
        128,
        5e-5,
        3000,
    )
    assert settings["lr_scheduler_type"] == "cosine" and settings["freeze_encoder"] is True
    overrides = [
        "--set",
        f'model.checkpoint="{tmp_path / "model"}"',
        "--set",
        f'data.reader.folder="{tmp_path / "muge"}"',
    ]
    assert main(["run", str(recipe), "--dry-run", *overrides]) == 0
    assert main(["run", str(recipe)]) == 2
    assert "model.checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("lang, search", [("zh", "caption-zh"), ("en", "caption")])
def test_without_a_generation_key_captions_decode_with_the_languages_official_search(
    muge_recipe, tmp_path, lang, search
):
    from ofa_core.recipe import load, resolve
    from ofa_core.trainer import plugin as builtins
    from ofa_tasks.caption import plugin

    recipe = {**muge_recipe, "task": {"name": "caption", "lang": lang}}
    recipe.pop("generation", None)
    (tmp_path / "recipe.json").write_bytes(orjson.dumps(recipe))
    assert resolve(load(tmp_path / "recipe.json"), registry_with(builtins, plugin)).generation == search
