"""`ofa predict` on text-only records (JSONL, TSV without images, --field alone) and with the task a converted
official checkpoint records."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.model.task_config import CheckpointTask
from ofa_core.testing import fake_image, tiny_checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    tiny_checkpoint(directory)
    return directory


def predict(capsys, *args: str) -> list[dict]:
    assert main(["predict", *args, "--generation", "num_beams=1", "--generation", "max_new_tokens=3"]) == 0
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_field_values_alone_make_one_text_only_record(model, capsys):
    (row,) = predict(capsys, "--model", str(model), "--task", "vqa", "--lang", "zh", "--field", "question=图片中有什么")
    assert row["id"] == "0" and row["image"] is None and row["source"] == "图片中有什么"


def test_jsonl_records_with_and_without_images(model, tmp_path, capsys):
    image = tmp_path / "red.png"
    fake_image(0).save(image)
    encoded = base64.b64encode(image.read_bytes()).decode()
    lines = [
        {"id": "a", "question": "这是什么", "image": "red.png"},
        {"id": "b", "question": "有几个"},
        {"question": "什么颜色", "image": encoded},
    ]
    (tmp_path / "records.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"[1, 2]\n")
    rows = predict(capsys, str(tmp_path / "records.jsonl"), "--model", str(model), "--task", "vqa", "--lang", "zh")
    assert [row["id"] for row in rows] == ["a", "b", "records:3"]
    assert [row["source"] for row in rows] == ["这是什么", "有几个", "什么颜色"]


def test_a_tsv_without_an_image_column_holds_texts(model, tmp_path, capsys):
    (tmp_path / "texts.tsv").write_text("id\tquestion\nq1\t这是什么\nq2\t有几个\n", encoding="utf-8")
    rows = predict(capsys, str(tmp_path / "texts.tsv"), "--model", str(model), "--task", "vqa", "--lang", "zh")
    assert [(row["id"], row["source"]) for row in rows] == [("q1", "这是什么"), ("q2", "有几个")]


def test_no_inputs_and_no_fields_is_a_clear_error(model, capsys):
    assert main(["predict", "--model", str(model), "--task", "vqa"]) == 2
    assert "INPUT: none given" in capsys.readouterr().err


def test_a_converted_checkpoint_names_the_task_and_prompt_type(tmp_path, capsys):
    tiny_checkpoint(tmp_path / "vqa")
    CheckpointTask(
        fairseq_task="vqa_gen",
        task="vqa",
        language="zh",
        search="vqa",
        inference="beam_search",
        patch_image_size=32,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
        max_src_length=80,
        max_tgt_length=30,
        prompt_type="prev_output",
    ).write(tmp_path / "vqa")
    field = ["--field", "question=图片中有什么"]
    recorded = predict(capsys, "--model", str(tmp_path / "vqa"), *field)
    explicit = predict(
        capsys,
        "--model",
        str(tmp_path / "vqa"),
        "--task",
        "vqa",
        "--lang",
        "zh",
        "--prompt-type",
        "prev_output",
        *field,
    )
    assert recorded == explicit and recorded[0]["source"] == "图片中有什么"
    assert main(["predict", "--model", str(model_without_record(tmp_path)), *field]) == 2
    assert "--task: not given" in capsys.readouterr().err


def model_without_record(tmp_path: Path) -> Path:
    tiny_checkpoint(tmp_path / "plain")
    return tmp_path / "plain"
