"""The MUGE LiT recipe end to end on tiny data: `run` (grouped, frozen encoder, eval, best) then `ofa eval`."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import orjson

from ofa_core.cli import main
from ofa_core.testing import fake_image, run_recipe, tiny_checkpoint


def write_muge(folder, split: str, images: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    captions, rows = [], []
    for index in range(images):
        buffer = io.BytesIO()
        fake_image(index).save(buffer, format="JPEG")
        rows.append(f"{index}\t{base64.urlsafe_b64encode(buffer.getvalue()).decode()}")
        captions.append(
            orjson.dumps({"image_id": index, "text": ["一只猫", "红色的车", "图片中有狗"][index % 3 :] + ["大小人"]})
        )
    (folder / f"IC_{split}.jsonl").write_bytes(b"\n".join(captions) + b"\n")
    (folder / f"IC_{split}.tsv").write_text("\n".join(rows) + "\n")


def test_muge_lit_recipe_trains_evaluates_and_scores(tmp_path, capsys) -> None:
    write_muge(tmp_path / "MUGE", "train", 4)
    write_muge(tmp_path / "MUGE", "valid", 2)
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "caption", "lang": "zh"},
        "data": {"reader": {"name": "muge", "folder": "MUGE"}},
        "metrics": [{"name": "caption", "tokenize": "zh"}],
        "generation": {"num_beams": 2, "max_new_tokens": 4},
        "training": {
            "per_device_train_batch_size": 4,
            "freeze_encoder": True,
            "eval_strategy": "steps",
            "eval_steps": 2,
            "save_steps": 2,
            "metric_for_best_model": "cider",
            "logging_steps": 1,
            "report_to": [],
        },
    }
    summary = run_recipe(recipe, tmp_path, max_steps=2)
    assert summary["steps"] == 2 and summary["best_checkpoint"].endswith("checkpoint-2")
    assert "cider" in summary["eval"]
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", summary["best_checkpoint"]]) == 0
    result = orjson.loads(capsys.readouterr().out)
    assert result["examples"] == 2 and "cider" in result
    rows = [orjson.loads(line) for line in Path(result["predictions"]).read_bytes().splitlines()]
    assert {row["id"] for row in rows} == {"0", "1"}
