"""One converted checkpoint serves every built-in task: zero-shot `predict`, and as the start of each task's recipe."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import orjson
import pytest
from PIL import Image

from ofa_core.cli import main
from ofa_core.testing import run_recipe
from tests.convert.fixtures import TINY, save_fairseq_checkpoint, write_bert_vocab

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
# TINY's 300 ids = 4 fairseq specials + 277 BERT tokens + <mask> + 8 codes + 10 bins.
BERT_TOKENS = 277
COLOURS = {"一": (220, 30, 30), "七": (30, 200, 40), "三": (40, 40, 220)}  # labels are vocabulary characters


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """An official-layout Chinese checkpoint converted with `ofa convert fairseq` (no fine-tuning)."""
    folder = tmp_path_factory.mktemp("pretrained")
    save_fairseq_checkpoint(folder / "ofa_tiny_cn.pt", TINY, seed=3)
    vocab = write_bert_vocab(folder / "vocab.txt", BERT_TOKENS)
    out = folder / "ofa-tiny-cn"
    assert main(["convert", "fairseq", str(folder / "ofa_tiny_cn.pt"), "--out", str(out), "--vocab", str(vocab)]) == 0
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for index, colour in enumerate(COLOURS.values()):
        Image.new("RGB", (48, 40), colour).save(folder / f"{index}.png")
    return folder


def predict(tmp_path: Path, *argv: str) -> list[dict]:
    out = tmp_path / "predictions.jsonl"
    assert main(["predict", *argv, "--output", str(out), "--overwrite"]) == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_zero_shot_caption(converted, images, tmp_path):
    rows = predict(
        tmp_path,
        str(images),
        "--model",
        str(converted),
        "--task",
        "caption",
        "--lang",
        "zh",
        "--generation",
        "max_new_tokens=8",
    )
    assert [row["id"] for row in rows] == ["0", "1", "2"]
    assert all(row["source"] == "图片描述了什么内容?" and isinstance(row["prediction"], str) for row in rows)


def test_zero_shot_vqa_open_and_closed_set(converted, images, tmp_path):
    common = [
        str(images),
        "--model",
        str(converted),
        "--task",
        "vqa",
        "--lang",
        "zh",
        "--field",
        "question=三七?",
        "--generation",
        "max_new_tokens=4",
    ]
    assert len(predict(tmp_path, *common)) == 3
    rows = predict(tmp_path, *common, "--option", 'answers=["一", "七", "三"]', "--option", "top_k=2")
    assert all(row["prediction"] in COLOURS and len(row["ranking"]) == 2 for row in rows)


def test_zero_shot_classification_from_a_labels_file(converted, images, tmp_path):
    (tmp_path / "labels.txt").write_text("\n".join(COLOURS) + "\n", encoding="utf-8")
    rows = predict(
        tmp_path,
        str(images),
        "--model",
        str(converted),
        "--task",
        "classification",
        "--lang",
        "zh",
        "--option",
        f"labels_file={tmp_path / 'labels.txt'}",
        "--option",
        "inference=beam",
    )
    assert all(row["prediction"] in COLOURS for row in rows)


def test_predict_option_errors_name_the_option(converted, images, tmp_path, capsys):
    argv = ["predict", str(images), "--model", str(converted), "--task", "classification"]
    assert main([*argv, "--option", "labels_fiel=x.txt"]) == 2
    assert "--option.labels_fiel" in capsys.readouterr().err
    assert main([*argv, "--option", "novalue"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_the_built_in_recipes_differ_only_in_task_data_and_training():
    recipes = {
        name: json.loads((RECIPES / f"{name}.json").read_text()) for name in ("muge_caption", "vqa", "classification")
    }
    models = {name: recipe["model"] for name, recipe in recipes.items()}
    assert len({json.dumps(model, sort_keys=True) for model in models.values()}) == 1, models
    assert {recipe["task"]["name"] for recipe in recipes.values()} == {"caption", "vqa", "classification"}


def test_one_converted_directory_initialises_all_three_tasks(converted, images, tmp_path):
    lines = {"caption": [], "vqa": [], "classification": []}
    for index, label in enumerate(COLOURS):
        image = str(images / f"{index}.png")
        lines["vqa"].append({"id": str(index), "image": image, "question": "三七?", "answers": [label]})
        lines["classification"].append({"id": str(index), "image": image, "label": label})
    for task, rows in lines.items():
        if rows:
            (tmp_path / f"{task}.jsonl").write_bytes(b"\n".join(orjson.dumps(row) for row in rows))
    muge = tmp_path / "muge"
    muge.mkdir()
    for split in ("train", "valid"):
        (muge / f"IC_{split}.jsonl").write_bytes(
            b"\n".join(
                orjson.dumps({"image_id": str(i), "text": [label, label * 2]}) for i, label in enumerate(COLOURS)
            )
        )
        (muge / f"IC_{split}.tsv").write_text(
            "".join(f"{i}\t{base64.b64encode((images / f'{i}.png').read_bytes()).decode()}\n" for i in range(3)),
            encoding="utf-8",
        )
    training = {
        "per_device_train_batch_size": 3,
        "per_device_eval_batch_size": 3,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "constant",
        "report_to": [],
        "eval_strategy": "steps",
        "eval_steps": 2,
    }
    data = {
        "caption": {"reader": {"name": "muge", "folder": str(muge)}},
        "vqa": {
            "reader": {"name": "vqa_jsonl", "train": str(tmp_path / "vqa.jsonl"), "valid": str(tmp_path / "vqa.jsonl")}
        },
        "classification": {
            "reader": {
                "name": "classification_jsonl",
                "train": str(tmp_path / "classification.jsonl"),
                "valid": str(tmp_path / "classification.jsonl"),
            }
        },
    }
    options = {"caption": {}, "vqa": {"answers": list(COLOURS)}, "classification": {"labels": list(COLOURS)}}
    for task in ("caption", "vqa", "classification"):
        recipe = {
            "model": {"checkpoint": str(converted)},
            "task": {"name": task, "lang": "zh", "options": options[task]},
            "data": data[task],
            "generation": {"num_beams": 2, "max_new_tokens": 4},
            "training": training,
        }
        (tmp_path / task).mkdir()
        result = run_recipe(recipe, tmp_path / task, max_steps=2)
        assert result["steps"] == 2 and result["eval"], (task, result)
    rows = predict(
        tmp_path,
        str(images),
        "--model",
        str(tmp_path / "classification" / "run"),
        "--task",
        "classification",
        "--option",
        f"labels={orjson.dumps(list(COLOURS)).decode()}",
    )
    assert all(row["prediction"] in COLOURS for row in rows), "a run directory predicts with its best checkpoint"


def test_predict_reads_muge_headerless_image_tsv_and_skips_bad_rows(converted, images, tmp_path, caplog):
    tsv = tmp_path / "IC_test.tsv"
    encoded = [base64.b64encode((images / f"{i}.png").read_bytes()).decode() for i in range(2)]
    tsv.write_text(f"img0\t{encoded[0]}\nbroken\tnot-an-image\nimg1\t{encoded[1]}\n", encoding="utf-8")
    rows = predict(
        tmp_path,
        str(tsv),
        "--model",
        str(converted),
        "--task",
        "caption",
        "--lang",
        "zh",
        "--generation",
        "max_new_tokens=8",
    )
    assert [row["id"] for row in rows] == ["img0", "img1"]
    assert f"{tsv}:2" in caplog.text


def test_predict_decodes_with_the_official_search_of_the_prompt_language(converted):
    from ofa_core.inference.predictor import Predictor
    from ofa_core.testing import registry_with
    from ofa_tasks.caption import plugin

    registry = registry_with(plugin)
    task = registry.tasks.get("caption")
    chinese = Predictor.from_directory(converted, task, registry.prompts.get("caption.zh")).generation
    english = Predictor.from_directory(
        converted, task, registry.prompts.get("caption.en"), generation={"num_beams": 3}
    ).generation
    assert (chinese.num_beams, chinese.max_new_tokens) == (8, 129)  # MUGE's caption-zh
    assert (english.num_beams, english.max_new_tokens) == (3, 17)  # COCO's caption, beams overridden
