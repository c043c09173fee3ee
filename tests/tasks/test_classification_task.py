"""The built-in classification task: labels, readers, metric, and a recipe trained on generated images."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import orjson
import pytest
from PIL import Image
from task_training import quick_training

from ofa_core import OFAError
from ofa_core.cli import main
from ofa_core.model.image_processing import load_image
from ofa_core.plugin import BadRecordError, ClosedSet
from ofa_core.recipe import build_options
from ofa_core.recipe.schema import RecipeError
from ofa_core.testing import check_metric, registry_with, run_recipe, tiny_checkpoint
from ofa_tasks.classification import plugin
from ofa_tasks.classification.labels import ClassificationOptions
from ofa_tasks.classification.metrics import ClassificationMetricOptions, ClassificationScores
from ofa_tasks.classification.readers import (
    ClassificationJsonlOptions,
    ImageFolderOptions,
    read_classification_jsonl,
    read_image_folder,
)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def image_bytes(colour, mode: str = "RGB", fmt: str = "PNG", size=(32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---- registration, options, labels -----------------------------------------------------------------


def test_components_are_registered_with_the_official_caption_prompt():
    registry = registry_with(plugin)
    assert registry.prompts.get("classification.en").source == " what does the image describe?"
    assert registry.prompts.get("classification.zh").source == "图片描述了什么内容?"
    assert registry.prompts.get("classification.zh").target == "{label}"
    task = registry.tasks.get("classification")
    assert (task.reader, task.metrics) == ("image_folder", ("classification",))
    assert {"image_folder", "classification_jsonl"} <= set(registry.readers.names())
    closed = task.closed_set(ClassificationOptions(labels=["猫", " dog "], inference="beam", restrict_loss=True))
    assert closed == ClosedSet(answers=("猫", "dog"), inference="beam", top_k=2, restrict_loss=True)  # top_k capped


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "task.options: neither labels nor labels_file given; set exactly one"),
        ({"labels": ["a"], "labels_file": "labels.txt"}, "task.options.labels_file: both labels and labels_file given"),
        ({"labels": ["cat", "dog", "cat"]}, "task.options.labels: labels[2] 'cat' repeats labels[0]"),
        ({"labels": ["cat", " "]}, "task.options.labels: labels[1] is ' '; every label must be non-empty text"),
        ({"labels": "cat,dog"}, "task.options.labels: labels must be a list of strings"),
        ({"labels": []}, "task.options.labels: labels is an empty list"),
        ({"labels_file": "missing.txt"}, "task.options.labels_file: "),
        ({"labels": ["a"], "inference": "greedy"}, "task.options.inference: 'greedy' is not one of 'rank', 'beam'"),
    ],
)
def test_option_errors_name_the_field(tmp_path, values, expected):
    (tmp_path / "labels.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(RecipeError) as error:
        build_options(ClassificationOptions, values, "task.options", tmp_path)
    assert expected in str(error.value)
    if "missing" in str(values):
        assert "missing.txt not found (relative paths are resolved against" in str(error.value)


def test_labels_file_is_resolved_against_the_recipe_and_read_as_utf8(tmp_path):
    write(tmp_path / "data" / "labels.txt", "\ufeff金毛犬\r\n golden retriever \n猫\n\n\n".encode())
    options = build_options(ClassificationOptions, {"labels_file": "data/labels.txt"}, "task.options", tmp_path)
    assert options.labels_file == str(tmp_path / "data" / "labels.txt")
    assert plugin.closed_set(options).answers == (
        "金毛犬",
        "golden retriever",
        "猫",
    )  # BOM, CRLF, spaces, trailing blanks
    write(tmp_path / "labels.json", orjson.dumps({"tabby cat": 0, "金毛犬": 1}))  # OFA's label-to-index maps, exported
    assert plugin.closed_set(ClassificationOptions(labels_file=str(tmp_path / "labels.json"))).answers == (
        "tabby cat",
        "金毛犬",
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("猫\n狗\n猫\n".encode(), r"labels\.txt: task\.options\.labels_file: line 3 repeats '猫' \(line 1\)"),
        (b"\n\n", r"labels\.txt: task\.options\.labels_file: no answers in the file"),
        ("红色\n".encode("gbk"), r"labels\.txt: task\.options\.labels_file: not UTF-8 text .*save it as UTF-8"),
    ],
)
def test_labels_file_errors_name_file_and_line(tmp_path, data, expected):
    options = ClassificationOptions(labels_file=str(write(tmp_path / "labels.txt", data)))
    with pytest.raises(OFAError, match=expected):
        plugin.closed_set(options)


def test_a_label_outside_the_set_is_an_error_naming_the_record_and_the_fix(tmp_path):
    path = write(tmp_path / "labels.txt", b"golden retriever\ntabby cat\n")
    options = ClassificationOptions(labels_file=str(path))
    record = {"id": "train/golden retreiver/1.jpg", "image": "1.jpg", "label": "golden retreiver"}
    with pytest.raises(OFAError) as error:
        plugin.preprocess(record, "train", options)
    message = str(error.value)
    assert "record 'train/golden retreiver/1.jpg': label 'golden retreiver' is not one of the 2 labels" in message
    assert f"labels_file {path}" in message and "did you mean 'golden retriever'?" in message
    assert "add it there or correct the record" in message
    with pytest.raises(OFAError, match="not one of"):
        plugin.preprocess(record, "valid", options)
    kept = plugin.preprocess({**record, "label": " tabby cat "}, "train", options)
    assert (kept["label"], kept["references"]) == ("tabby cat", ["tabby cat"])
    unlabelled = plugin.preprocess({"id": "x", "image": "x.jpg"}, "test", options)  # prediction
    assert (unlabelled["label"], unlabelled["references"]) == ("", [])
    with pytest.raises(OFAError, match="record 'x': no label; every train record needs one"):
        plugin.preprocess({"id": "x", "image": "x.jpg"}, "train", options)


# ---- readers ---------------------------------------------------------------------------------------


@pytest.fixture
def image_tree(tmp_path) -> Path:
    root = tmp_path / "images"
    write(root / "train" / "红色" / "a.png", image_bytes((200, 20, 20, 128), "RGBA"))
    write(root / "train" / "红色" / "b.webp", image_bytes((210, 30, 20), fmt="WEBP"))
    write(root / "train" / "红色" / "broken.jpg", image_bytes((210, 30, 20), fmt="JPEG")[:20])
    write(root / "train" / "red car" / "c.JPEG", image_bytes((20, 20, 200), fmt="JPEG"))
    write(root / "train" / "red car" / "notes.txt", b"not an image")
    write(root / "train" / "red car" / ".DS_Store", b"\0\0")
    write(root / "train" / "stray.png", image_bytes((0, 0, 0)))
    write(root / "val" / "红色" / "d.png", image_bytes((200, 20, 20)))
    return root


def test_image_folder_reads_classes_from_folder_names_and_skips_bad_files(image_tree, caplog):
    with caplog.at_level(logging.WARNING):
        records = list(read_image_folder(ImageFolderOptions(root=str(image_tree)), "train"))
    assert [(r["id"], r["label"]) for r in records] == [
        ("red car/c.JPEG", "red car"),
        ("红色/a.png", "红色"),
        ("红色/b.webp", "红色"),
    ]
    assert records[1]["references"] == ["红色"] and records[1]["image"] == str(image_tree / "train" / "红色" / "a.png")
    assert [load_image(r["image"]).mode for r in records] == ["RGB", "RGB", "RGB"]  # RGBA PNG and WebP decode to RGB
    text = caplog.text
    assert str(image_tree / "train" / "红色" / "broken.jpg") in text and "not a readable image" in text
    assert "notes.txt" in text and f"{image_tree / 'train' / 'stray.png'}: not inside a class folder" in text
    assert ".DS_Store" not in text and "skipped 3 bad records in split 'train'" in text
    assert [r["id"] for r in read_image_folder(ImageFolderOptions(root=str(image_tree)), "valid")] == ["红色/d.png"]


def test_image_folder_errors(image_tree):
    strict = ImageFolderOptions(root=str(image_tree), bad_records="error")
    with pytest.raises(BadRecordError, match=r"red car/notes\.txt: image: not a readable image.*bad_records"):
        list(read_image_folder(strict, "train"))
    with pytest.raises(
        OFAError, match=r"data\.reader\.root: no test folder in .*expected .*/test/<class name>/<images>"
    ):
        list(read_image_folder(strict, "test"))
    (image_tree / "valid").mkdir()
    with pytest.raises(OFAError, match=r"both .*valid and .*val exist; keep one folder for the valid split"):
        list(read_image_folder(strict, "valid"))


def test_jsonl_reader_accepts_paths_base64_and_tsv_ids(tmp_path, caplog):
    write(tmp_path / "imgs" / "cat.png", image_bytes((10, 10, 10, 0), "RGBA"))
    tsv = write(
        tmp_path / "images.tsv", b"img7\t" + base64.urlsafe_b64encode(image_bytes((0, 0, 255), fmt="WEBP")) + b"\n"
    )
    lines = [
        orjson.dumps({"id": "p1", "image": "imgs/cat.png", "label": "猫"}),
        orjson.dumps({"image": base64.b64encode(image_bytes((0, 255, 0), fmt="JPEG")).decode(), "label": "dog"}),
        orjson.dumps({"id": 3, "image": "img7", "label": "猫"}),
        b'{"id": "p4", "image": "imgs/cat.png", "lab',
        orjson.dumps({"id": "p5", "image": "imgs/none.png", "label": "猫"}),
        orjson.dumps({"id": "p6", "image": "imgs/cat.png"}),
        orjson.dumps({"id": "p7", "image": "img8", "label": "猫"}),
    ]
    path = write(tmp_path / "valid.jsonl", b"\n".join(lines) + b"\n\n")
    options = ClassificationJsonlOptions(valid=str(path), images=str(tsv))
    with caplog.at_level(logging.WARNING):
        records = list(read_classification_jsonl(options, "valid"))
    assert [(r["id"], r["label"], r["references"]) for r in records] == [
        ("p1", "猫", ["猫"]),
        ("valid:2", "dog", ["dog"]),
        ("3", "猫", ["猫"]),
    ]  # a missing id becomes file:line
    assert records[0]["image"] == str(tmp_path / "imgs" / "cat.png")
    assert Image.open(io.BytesIO(records[1]["image"])).format == "JPEG"
    assert Image.open(io.BytesIO(records[2]["image"])).format == "WEBP"
    text = caplog.text
    assert "valid.jsonl:4: not valid JSON" in text
    assert "valid.jsonl:5: image: 'imgs/none.png' is neither a file in" in text
    assert "valid.jsonl:6: not a classification line" in text and "label is None" in text
    assert f"valid.jsonl:7: image: 'img8' is neither a file in {tmp_path}, an id in {tsv}" in text
    assert "skipped 4 bad records" in text


def test_jsonl_test_split_may_omit_labels_and_missing_split_files_are_named(tmp_path):
    write(tmp_path / "a.png", image_bytes((1, 2, 3)))
    path = write(tmp_path / "test.jsonl", orjson.dumps({"image": "a.png"}))
    records = list(read_classification_jsonl(ClassificationJsonlOptions(test=str(path)), "test"))
    assert records[0]["label"] is None and records[0]["references"] == []
    with pytest.raises(OFAError, match=r'data\.reader\.train: no file for the train split; add "train": "path"'):
        list(read_classification_jsonl(ClassificationJsonlOptions(test=str(path)), "train"))


# ---- metric ----------------------------------------------------------------------------------------


def test_metric_hand_computed_in_chinese_and_merged_across_processes():
    spec = registry_with(plugin).metrics.get("classification")
    predictions = ["猫", "猫", "狗", "狗", "鸟", "猫"]
    labels = ["猫", "狗", "狗", "狗", "猫", "猫"]
    scores = check_metric(spec, predictions, [[label] for label in labels])
    # 猫: predicted 3, right 2 -> P 2/3; support 3 -> R 2/3.  狗: predicted 2, right 2 -> P 1; support 3 -> R 2/3.
    # 鸟: predicted once, never right, no support -> P = R = F1 = 0.  Accuracy 4/6.
    f1_cat, f1_dog = 2 / 3, 2 * 1 * (2 / 3) / (1 + 2 / 3)
    assert scores["accuracy"] == pytest.approx(100 * 4 / 6)
    assert scores["macro_f1"] == pytest.approx(100 * (f1_cat + f1_dog + 0) / 3)
    assert scores["class/狗/precision"] == pytest.approx(100.0) and scores["class/狗/recall"] == pytest.approx(
        100 * 2 / 3
    )
    assert scores["class/猫/f1"] == pytest.approx(100 * f1_cat) and scores["class/猫/support"] == 3.0
    assert (scores["class/鸟/precision"], scores["class/鸟/support"]) == (0.0, 0.0)
    assert next(iter(scores)) == "accuracy"  # the default metric_for_best_model


def test_metric_top_k_from_rankings_in_english_and_without_per_class_keys():
    rankings = [["tabby cat", "golden retriever"], ["tabby cat", "golden retriever"], ["golden retriever", "parrot"]]
    labels = [["golden retriever"], ["tabby cat"], ["tabby cat"]]
    parts = [ClassificationScores(ClassificationMetricOptions(per_class=False)) for _ in range(2)]
    for part, rows in zip(parts, (slice(0, 2), slice(2, 3))):
        part.update([ranking[0] for ranking in rankings[rows]], labels[rows])
        part.update_rankings(rankings[rows], labels[rows])
    merged = ClassificationScores(ClassificationMetricOptions(per_class=False))
    merged.load_state({key: parts[0].state()[key] + parts[1].state()[key] for key in parts[0].state()})
    # top-1: only the second example; top-2: the first two.  tabby cat: P 1/2, R 1/2; golden retriever: P 0, R 0.
    assert merged.compute() == pytest.approx({"accuracy": 100 / 3, "top2_accuracy": 200 / 3, "macro_f1": 100 * 0.5 / 2})
    with pytest.raises(OFAError, match="no reference label"):
        merged.update(["tabby cat"], [[]])


# ---- recipes ---------------------------------------------------------------------------------------

COLOURS = {"红色": (220, 30, 30), "猫": (30, 200, 40), "golden retriever": (40, 40, 220)}


def write_squares(root: Path, split: str, per_class: int) -> None:
    """Coloured squares with a few noisy pixels, one folder per label."""
    for label, colour in COLOURS.items():
        for copy in range(per_class):
            image = Image.new("RGB", (32, 32), colour)
            for step in range(4):
                image.putpixel(((copy * 7 + step * 5) % 32, (copy * 3 + step * 11) % 32), (255, 255, 255))
            (root / split / label).mkdir(parents=True, exist_ok=True)
            image.save(root / split / label / f"{copy}.png")


@pytest.fixture
def squares_recipe(tmp_path) -> dict:
    write_squares(tmp_path / "squares", "train", 6)
    write_squares(tmp_path / "squares", "val", 2)
    write(tmp_path / "labels.txt", "\n".join(COLOURS).encode())
    tiny_checkpoint(tmp_path / "model")
    return {
        "name": "classification_tiny",
        "model": {"checkpoint": "model"},
        "task": {"name": "classification", "lang": "zh", "options": {"labels_file": "labels.txt", "top_k": 2}},
        "data": {"reader": {"name": "image_folder", "root": "squares"}},
        "training": quick_training(learning_rate=5e-3, per_device_eval_batch_size=6),
    }


def evaluate(recipe_path: Path, checkpoint: Path, capsys, *overrides: str) -> tuple[dict, list[dict]]:
    assert main(["eval", str(recipe_path), "--checkpoint", str(checkpoint), *overrides]) == 0
    scores = orjson.loads(capsys.readouterr().out)
    rows = [orjson.loads(line) for line in Path(scores["predictions"]).read_bytes().splitlines()]
    return scores, rows


def test_training_on_coloured_squares_beats_the_untrained_model(squares_recipe, tmp_path, capsys):
    """40 steps: after 30 the tiny model sits at the threshold, where float rounding in the update decides."""
    run_recipe(squares_recipe, tmp_path, max_steps=40)
    recipe_path = tmp_path / "recipe.json"
    before, _ = evaluate(recipe_path, tmp_path / "model", capsys)
    checkpoint = max((tmp_path / "run").glob("checkpoint-*"))
    after, rows = evaluate(recipe_path, checkpoint, capsys)
    assert after["examples"] == 6 and after["accuracy"] > before["accuracy"] + 40, (before, after)
    assert after["top2_accuracy"] >= after["accuracy"] and "class/golden retriever/recall" in after
    assert all(row["prediction"] in COLOURS for row in rows)
    assert all(row["ranking"][0]["answer"] == row["prediction"] and len(row["ranking"]) == len(COLOURS) for row in rows)
    beam, beam_rows = evaluate(recipe_path, checkpoint, capsys, "--set", "task.options.inference=beam", "--overwrite")
    assert beam["accuracy"] > before["accuracy"] + 40 and all(row["prediction"] in COLOURS for row in beam_rows)


def test_classification_recipe_validates_once_weights_and_data_exist(squares_recipe, tmp_path, capsys):
    """recipes/classification.json starts from the same converted OFA-CN-base as the MUGE recipe."""
    recipe = orjson.loads((RECIPES / "classification.json").read_bytes())
    muge = orjson.loads((RECIPES / "muge_caption.json").read_bytes())
    assert recipe["model"] == muge["model"] and recipe["loss"] == muge["loss"]
    assert recipe["task"]["lang"] == "zh" and recipe["data"]["reader"]["name"] == "image_folder"
    assert recipe["training"]["metric_for_best_model"] == "accuracy"
    overrides = [
        "--set",
        f'model.checkpoint="{tmp_path / "model"}"',
        "--set",
        f'data.reader.root="{tmp_path / "squares"}"',
        "--set",
        f'task.options.labels_file="{tmp_path / "labels.txt"}"',
    ]
    assert main(["recipe", "validate", str(RECIPES / "classification.json"), *overrides]) == 0
    assert main(["recipe", "validate", str(RECIPES / "classification.json")]) == 2
    assert "model.checkpoint" in capsys.readouterr().err


def test_recipe_validate_reads_the_labels_file(squares_recipe, tmp_path, capsys):
    write(tmp_path / "labels.txt", "\n".join([*COLOURS, next(iter(COLOURS))]).encode())
    (tmp_path / "recipe.json").write_bytes(orjson.dumps(squares_recipe))
    assert main(["recipe", "validate", str(tmp_path / "recipe.json")]) == 2
    err = capsys.readouterr().err
    assert "labels.txt" in err and f"line {len(COLOURS) + 1} repeats" in err and "Traceback" not in err
