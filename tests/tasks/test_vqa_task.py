"""The built-in VQA task: answers, metric, readers and a recipe trained on generated data."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import orjson
import pytest
from PIL import Image
from task_training import quick_training, untrained_and_trained

from ofa_core.cli import main
from ofa_core.testing import registry_with, run_recipe, tiny_checkpoint
from ofa_tasks.vqa.answers import decode, encode, normalise_question, parse_official
from ofa_tasks.vqa.metrics import VqaAccuracy, VqaMetricOptions
from ofa_tasks.vqa.readers import VqaJsonlOptions, VqaTsvOptions, read_vqa_jsonl, read_vqa_tsv


def png(colour, mode="RGB", fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (32, 24), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def test_official_answer_format_and_question_cleanup():
    assert parse_official("0.6|!+no&&1.0|!+yes&&0.3|!+no") == {"no": 0.6, "yes": 1.0}
    assert decode(encode("two dogs", 0.9)) == ("two dogs", 0.9)
    assert encode("yes", 1.0) == "yes" and decode(encode("yes", 1.0)) == ("yes", 1.0)
    assert decode("plain") == ("plain", 1.0)
    assert normalise_question("?What is the man-made / object") == "what is the man made object?"


def test_soft_accuracy_and_exact_match_hand_computed():
    metric = VqaAccuracy(VqaMetricOptions())
    metric.update(["yes", "no", "cat"], [["1|!+yes", "0.3|!+no"], ["1|!+yes", "0.3|!+no"], ["0.9|!+dog"]])
    # soft: (1.0 + 0.3 + 0) / 3; exact: only "yes" equals the best answer.
    assert metric.compute() == pytest.approx({"vqa_acc": 100 * 1.3 / 3, "exact_match": 100 / 3})
    other = VqaAccuracy(VqaMetricOptions())
    other.update(["dog"], [["0.9|!+dog"]])
    merged = {key: metric.state()[key] + other.state()[key] for key in metric.state()}
    metric.load_state(merged)
    assert metric.compute()["vqa_acc"] == pytest.approx(100 * 2.2 / 4)


def test_jsonl_reader_accepts_paths_base64_tsv_ids_and_both_answer_forms(tmp_path, caplog):
    (tmp_path / "red.png").write_bytes(png((255, 0, 0)))
    tsv = tmp_path / "images.tsv"
    tsv.write_text("img7\t" + base64.b64encode(png((0, 0, 255), "RGBA")).decode() + "\n", encoding="utf-8")
    lines = [
        {
            "id": "q1",
            "image": "red.png",
            "question": "what colour?",
            "answers": [{"answer": "red", "confidence": 1.0}, {"answer": "pink", "confidence": 0.3}],
        },
        {
            "id": "q2",
            "image": base64.b64encode(png((0, 255, 0), fmt="WEBP")).decode(),
            "question": "colour?",
            "answers": ["green", "green", "lime"],
        },
        {"id": "q3", "image": "img7", "question": "colour?", "answers": ["blue"]},
        {"id": "q4", "image": "missing.png", "question": "colour?", "answers": ["x"]},
    ]
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b'\n{"image": "red.png", "quest\n')
    with caplog.at_level(logging.WARNING):
        records = list(read_vqa_jsonl(VqaJsonlOptions(train=str(path), images=str(tsv)), "train"))
    assert [r["id"] for r in records] == ["q1", "q2", "q3"]
    assert records[0]["answer"] == "red" and records[0]["references"] == ["red", "0.3|!+pink"]
    assert records[1]["references"] == ["green", "lime"]
    assert "train.jsonl:4" in caplog.text and "train.jsonl:5" in caplog.text


def test_official_tsv_reader(tmp_path):
    image = base64.b64encode(png((9, 9, 9))).decode()
    path = tmp_path / "vqa_val.tsv"
    path.write_text(f"11\timg\tis it dark?\t1.0|!+yes&&0.3|!+no\tlamp\t{image}\n12\tshort\n", encoding="utf-8")
    records = list(read_vqa_tsv(VqaTsvOptions(valid=str(path)), "valid"))
    assert len(records) == 1 and records[0]["answer"] == "yes" and records[0]["id"] == "11"


def test_vqa_components_are_registered():
    from ofa_tasks.vqa import plugin

    registry = registry_with(plugin)
    assert registry.prompts.get("vqa.en").source == " {question_en}"
    assert registry.tasks.get("vqa").metrics == ("vqa",)


@pytest.fixture
def vqa_recipe(tmp_path) -> dict:
    colours = {"红色": (220, 30, 30), "大": (30, 200, 40), "小": (40, 40, 220)}
    lines = []
    for index in range(12):
        answer, colour = list(colours.items())[index % 3]
        (tmp_path / f"{index}.png").write_bytes(png(colour))
        lines.append(
            {
                "id": str(index),
                "image": f"{index}.png",
                "question": "图片中有什么",
                "answers": [{"answer": answer, "confidence": 1.0}],
            }
        )
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    (tmp_path / "valid.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines[:3]))
    tiny_checkpoint(tmp_path / "model")
    return {
        "name": "vqa_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "vqa", "lang": "zh"},
        "data": {"reader": {"name": "vqa_jsonl", "train": "train.jsonl", "valid": "valid.jsonl"}},
        "generation": {"num_beams": 2, "max_new_tokens": 4},
        "training": quick_training(learning_rate=3e-3),
    }


def test_training_on_generated_vqa_beats_the_untrained_model(vqa_recipe, tmp_path, capsys):
    run_recipe(vqa_recipe, tmp_path, max_steps=40)
    before, after = untrained_and_trained(tmp_path, capsys)
    assert after["vqa_acc"] > before["vqa_acc"] + 30, (before, after)


def test_closed_set_evaluation_only_answers_candidates_and_ranks_them(vqa_recipe, tmp_path, capsys):
    (tmp_path / "answers.txt").write_text("红色\n大\n小\n猫\n", encoding="utf-8")
    vqa_recipe["task"]["options"] = {"answers_file": "answers.txt", "top_k": 2}
    run_recipe(vqa_recipe, tmp_path, max_steps=1)
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", str(tmp_path / "model")]) == 0
    result = orjson.loads(capsys.readouterr().out)
    rows = [orjson.loads(line) for line in Path(result["predictions"]).read_bytes().splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert row["prediction"] in {"红色", "大", "小", "猫"}
        assert [r["answer"] for r in row["ranking"]][0] == row["prediction"] and len(
            row["ranking"]
        ) == 4  # every candidate


def test_trie_restricted_training_with_beam_inference_learns_the_answers(vqa_recipe, tmp_path, capsys):
    vqa_recipe["task"]["options"] = {"answers": ["红色", "大", "小", "猫"], "inference": "beam", "restrict_loss": True}
    run_recipe(vqa_recipe, tmp_path, max_steps=25)
    before, after = untrained_and_trained(tmp_path, capsys)
    assert after["vqa_acc"] > before["vqa_acc"] + 30, (before, after)
    assert all(
        orjson.loads(line)["prediction"] in {"红色", "大", "小", "猫"}
        for line in Path(after["predictions"]).read_bytes().splitlines()
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"answers": ["a"], "answers_file": "answers.txt"}, "either answers or answers_file"),
        ({"restrict_loss": True}, "need candidate answers"),
    ],
)
def test_contradictory_closed_set_options_fail_in_one_line(vqa_recipe, tmp_path, capsys, options, message):
    (tmp_path / "answers.txt").write_text("a\n", encoding="utf-8")
    vqa_recipe["task"]["options"] = options
    (tmp_path / "recipe.json").write_bytes(orjson.dumps(vqa_recipe))
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_answers_as_one_string_and_bad_official_confidences(tmp_path, caplog):
    (tmp_path / "red.png").write_bytes(png((255, 0, 0)))
    path = tmp_path / "train.jsonl"
    path.write_bytes(orjson.dumps({"id": "q", "image": "red.png", "question": "colour?", "answers": "dark red"}))
    assert next(read_vqa_jsonl(VqaJsonlOptions(train=str(path)), "train"))["references"] == ["dark red"]
    image = base64.b64encode(png((9, 9, 9))).decode()
    tsv = tmp_path / "vqa.tsv"
    tsv.write_text(f"1\timg\tq?\tabc|!+yes\tx\t{image}\n2\timg\tq?\t0.5|!+no\tx\t{image}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        records = list(read_vqa_tsv(VqaTsvOptions(train=str(tsv)), "train"))
    assert [r["id"] for r in records] == ["2"] and f"{tsv}:1" in caplog.text


def test_predict_without_a_question_says_how_to_give_one(vqa_recipe, tmp_path, capsys):
    code = main(["predict", str(tmp_path / "0.png"), "--model", str(tmp_path / "model"), "--task", "vqa"])
    err = capsys.readouterr().err
    assert code == 2 and "--field question=" in err and "Traceback" not in err
