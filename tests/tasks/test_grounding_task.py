"""The built-in `grounding` task against OFA's RefCOCO code, read for facts: prompts and their ids,
target bins, image size, box mapping back to pixels, Acc@0.5 as the official evaluation counts it."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.data.encode import RecordEncoder
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.search import OFFICIAL_SEARCH
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.plugin import OFAError
from ofa_core.testing import check_metric, fake_image, registry_with, tiny_checkpoint, tiny_processor
from ofa_tasks.grounding.metrics import GroundingAccuracy, GroundingMetricOptions
from ofa_tasks.grounding.plugin import PROMPTS, GroundingOptions, allowed_tokens, postprocess, preprocess
from ofa_tasks.grounding.readers import (
    GroundingJsonlOptions,
    GroundingTsvOptions,
    read_grounding_jsonl,
    read_grounding_tsv,
)
from ofa_tasks.grounding.text import clean_expression

SPEC = Path(__file__).resolve().parents[2].parent / "shared/spec"
BPE_EN = SPEC / "BPE_EN"
BERT_CN_VOCAB = SPEC / "BERT_CN_vocab.txt"
RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "official"
OPTIONS = GroundingOptions()


def png(size: tuple[int, int], seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    fake_image(seed, size).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def en() -> OFATokenizer:
    if not all((BPE_EN / name).is_file() for name in ("encoder.json", "vocab.bpe", "dict.txt")):
        pytest.skip(f"{BPE_EN} not present")
    return OFATokenizer.from_gpt2_bpe(BPE_EN / "encoder.json", BPE_EN / "vocab.bpe", BPE_EN / "dict.txt")


@pytest.fixture(scope="module")
def zh() -> OFATokenizer:
    if not BERT_CN_VOCAB.is_file():
        pytest.skip(f"{BERT_CN_VOCAB} not present")
    return OFATokenizer.from_bert_vocab(BERT_CN_VOCAB)


def test_components_are_registered_with_the_official_prompts_and_search():
    registry = registry_with(installed=True)
    task = registry.tasks.get("grounding")
    assert registry.prompts.get(task.prompts["en"]).source == ' which region does the text " {expression} " describe?'
    assert registry.prompts.get(task.prompts["zh"]).source == '这段文字" {expression} "描述的是哪个区域？'
    assert (task.reader, task.metrics, task.generation) == ("grounding_tsv", ("grounding",), "grounding")
    assert "grounding_tsv" in registry.readers and "grounding_jsonl" in registry.readers
    search = OFFICIAL_SEARCH["grounding"]
    assert (search.beam, search.min_len, search.max_len_b, search.max_len_a, search.no_repeat_ngram_size) == (
        5,
        4,
        4,
        0,
        3,
    )


def test_expression_clean_up_is_the_official_caption_clean_up():
    assert clean_expression(",.The Man-in/RED  <person>\n") == "the man in red person"
    assert clean_expression("  Left   guy ") == "left guy"
    assert clean_expression("左边-穿红衣服的人") == "左边 穿红衣服的人"
    assert clean_expression(" ".join(f"w{i}" for i in range(100))) == " ".join(f"w{i}" for i in range(80))


def test_english_source_and_target_ids_with_the_official_vocabulary(en):
    record = preprocess(
        {"id": "1", "image": png((640, 480)), "text": "Man in RED", "box": [100, 50, 300, 410]}, "train", OPTIONS
    )
    example = RecordEncoder(en, PROMPTS["en"]).encode(record)
    # Every word is one GPT-2 token: Ġwhich Ġregion Ġdoes Ġthe Ġtext Ġ" Ġman Ġin Ġred Ġ" Ġdescribe ?,
    # each id its line in dict.txt + 4 (encoder.json gives the GPT-2 id that dict.txt lists).
    assert example.source_ids == (0, 61, 976, 473, 5, 2788, 22, 313, 11, 1275, 22, 6190, 116, 2)
    # Bins follow <mask> and 8192 codes: <bin_b> = 58457 + b = len(dict) - 1000 + b, no BPE.
    assert example.labels == (58457 + 156, 58457 + 104, 58457 + 468, 58457 + 853, 2)
    assert example.decoder_input_ids == (0, *example.labels[:-1])


def test_chinese_source_ids_with_the_official_vocabulary(zh):
    record = preprocess(
        {"id": "1", "image": png((64, 64)), "text": "红色的车", "box": [0, 0, 64, 64]}, "train", OPTIONS
    )
    example = RecordEncoder(zh, PROMPTS["zh"]).encode(record)
    lines = BERT_CN_VOCAB.read_text(encoding="utf-8").split("\n")
    # BERT splits CJK and punctuation into characters and drops spaces; fairseq id = vocab.txt line + 4.
    expected = [lines.index(character) + 4 for character in '这段文字"红色的车"描述的是哪个区域？']
    assert example.source_ids == (0, *expected, 2)
    assert example.labels == (29325, 29325, 29325 + 999, 29325 + 999, 2)


@pytest.mark.parametrize(
    "size, box, options, bins",
    [
        # round(v / w * 999) when patch_image_size == max_image_size: 156.09, 104.06, 468.28, 853.31
        ((640, 480), [100, 50, 300, 410], OPTIONS, (156, 104, 468, 853)),
        ((300, 600), [0, 0, 300, 600], OPTIONS, (0, 0, 999, 999)),
        # a tall image is squashed: 30/60*999 = 499.5 -> 500 (x), 300/1200*999 = 249.75 -> 250 (y)
        ((60, 1200), [30, 300, 45, 900], OPTIONS, (500, 250, 749, 749)),
        # official zero-shot: 480 px square, boxes still divided by 512: 240*480/480/512*999 = 468.28, 937.08
        ((480, 480), [240, 120, 480, 480], GroundingOptions(patch_image_size=480), (468, 234, 937, 937)),
    ],
)
def test_target_bins_hand_computed(size, box, options, bins):
    record = preprocess({"id": "r", "image": png(size), "text": "x", "box": box}, "valid", options)
    assert record["region"] == " ".join(f"<bin_{b}>" for b in bins)
    assert (record["width"], record["height"]) == size


def test_the_original_size_is_read_from_every_image_form(tmp_path):
    import numpy as np

    fake_image(0, (64, 48)).save(tmp_path / "a.png")
    for image in (str(tmp_path / "a.png"), png((64, 48)), fake_image(0, (64, 48)), np.zeros((48, 64, 3), np.uint8)):
        record = preprocess({"id": "p", "image": image, "text": "x"}, "test", OPTIONS)
        assert (record["width"], record["height"]) == (64, 48)


def test_every_image_becomes_a_square_of_the_checkpoint_resolution():
    processor = OFAImageProcessor(patch_image_size=512)
    assert processor.to_tensor(fake_image(0, (640, 480))).shape == (3, 512, 512)
    assert processor.to_tensor(fake_image(1, (60, 1200))).shape == (3, 512, 512)


def test_predictions_map_back_to_pixels_of_the_original_image(en):
    record = {"width": 640, "height": 480}
    # (token - len(dict) + 1000) / 999 * 512, divided by 512/640 (x) or 512/480 (y): b * 640/999, b * 480/999.
    text = en.decode([58457 + 156, 58457 + 104, 58457 + 468, 58457 + 853, 2], skip_special_tokens=True)
    box = postprocess(text, record, OPTIONS)
    assert isinstance(box, list) and all(type(value) is float for value in box)  # numbers, ready for JSON
    assert box == pytest.approx([156 * 640 / 999, 104 * 480 / 999, 468 * 640 / 999, 853 * 480 / 999], abs=1e-3)
    assert box == pytest.approx([100, 50, 300, 410], abs=0.5)
    zero_shot = postprocess("<bin_999> <bin_0> <bin_0> <bin_999>", record, GroundingOptions(patch_image_size=480))
    assert zero_shot == pytest.approx([512 * 640 / 480, 0, 0, 512], abs=1e-3)
    assert postprocess("<bin_1> <bin_2> a man", record, OPTIONS) is None


def test_acc_at_half_counts_as_the_official_evaluation():
    metric = GroundingAccuracy(GroundingMetricOptions())
    metric.update(
        ["0 0 10 10", "0 0 10 10", "0 0 10 10", "0 0 10 10", "10 10 0 0", "", "1 1 9 9"],
        [["0 0 10 10"], ["0 0 10 6"], ["0 0 10 5"], ["10 0 20 10"], ["0 0 10 10"], ["0 0 10 10"], ["0,0,10,10"]],
    )
    # IoU 1 hit; 0.6 hit; 50 / (100 + 50 - 50 + 1e-6) just under 0.5: miss; touching (zero width): miss;
    # inverted prediction (negative intersection): miss; no box: miss; 64 / 100 hit.
    assert metric.totals["hits"] == 3 and metric.count == 7
    assert metric.compute() == pytest.approx({"acc@0.5": 300 / 7, "miou": 100 * (1 + 0.6 + 0.5 + 0.64) / 7}, abs=1e-4)
    registry = registry_with(installed=True)
    scores = check_metric(
        registry.metrics.get("grounding"),
        ["0 0 10 10", "junk", "0 0 10 6", "5 5 9 9"],
        [["0 0 10 10"], ["0 0 10 10"], ["0 0 10 10"], ["0 0 1 1"]],
    )
    assert scores["acc@0.5"] == 50.0
    as_numbers = GroundingAccuracy(GroundingMetricOptions())  # what the task gives: lists / None, reference tuples
    as_numbers.update(
        [[0.0, 0.0, 10.0, 6.0], None, [1, 1, 9, 9]], [[(0, 0, 10, 10)], [(0, 0, 10, 10)], [(0, 0, 10, 10)]]
    )
    assert as_numbers.compute() == pytest.approx({"acc@0.5": 200 / 3, "miou": 100 * (0.6 + 0.64) / 3}, abs=1e-4)
    strict = GroundingAccuracy(GroundingMetricOptions(iou_threshold=0.7))
    strict.update(["0 0 10 6"], [["0 0 10 10"]])
    assert strict.compute()["acc@0.7"] == 0.0


def test_official_tsv_layouts_english_and_chinese(tmp_path, caplog):
    image, other = (
        base64.urlsafe_b64encode(png(size, seed)).decode() for seed, size in ((0, (640, 480)), (1, (30, 20)))
    )
    english = tmp_path / "refcoco_val.tsv"  # uniq-id, image-id, text, box, image: selected_cols 0,4,2,3
    english.write_text(
        f"7\t42\tleft man\t1.5,2,300.25,400\t{image}\n8\t42\tright man\t10,20,30,40\t{image}\n"
        f"9\t43\tdog\t1,2,3\t{other}\n10\t44\tcat\t1,2,3,4\tnot-an-image\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        records = list(read_grounding_tsv(GroundingTsvOptions(valid=str(english)), "valid"))
    assert [(r["id"], r["text"], r["box"], r["width"], r["height"]) for r in records] == [
        ("7", "left man", [1.5, 2.0, 300.25, 400.0], 640, 480),
        ("8", "right man", [10.0, 20.0, 30.0, 40.0], 640, 480),
    ]
    assert records[0]["references"] == [(1.5, 2.0, 300.25, 400.0)] and records[0]["image"] is records[1]["image"]
    assert (
        f"{english}:3: column 3: a box is 4 numbers" in caplog.text and f"{english}:4: column 4 (image)" in caplog.text
    )
    chinese = tmp_path / "refcoco_cn_val.tsv"  # uniq-id, text, box, image: selected_cols 0,3,1,2
    chinese.write_text(f"c1\t左边的人\t1,2,3,4\t{other}\n", encoding="utf-8")
    [record] = read_grounding_tsv(GroundingTsvOptions(valid=str(chinese), columns=[0, 3, 1, 2]), "valid")
    assert (record["id"], record["text"], record["box"], record["width"]) == (
        "c1",
        "左边的人",
        [1.0, 2.0, 3.0, 4.0],
        30,
    )
    with pytest.raises(ValueError, match="4 distinct column numbers"):
        GroundingTsvOptions(columns=[0, 3, 3, 2])


def test_jsonl_reader_paths_base64_and_unlabelled_test_lines(tmp_path, caplog):
    fake_image(0, (40, 30)).save(tmp_path / "a.png")
    lines = [
        {"id": "x", "image": "a.png", "text": "a car", "box": [1, 2, 30, 20]},
        {"image": base64.b64encode(png((20, 10))).decode(), "text": "a dog", "box": [0, 0, 10, 5]},
        {"image": "a.png", "text": "no box"},
        {"image": "a.png", "text": "bad", "box": [1, 2]},
    ]
    (tmp_path / "data.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    options = GroundingJsonlOptions(train=str(tmp_path / "data.jsonl"), test=str(tmp_path / "data.jsonl"))
    with caplog.at_level(logging.WARNING):
        train = list(read_grounding_jsonl(options, "train"))
    assert [(r["id"], r["width"], r["height"]) for r in train] == [("x", 40, 30), ("data:2", 20, 10)]
    assert "data.jsonl:3: each line needs image, text and box" in caplog.text and "data.jsonl:4: box:" in caplog.text
    test = list(read_grounding_jsonl(options, "test"))
    assert [r["id"] for r in test] == ["x", "data:2", "data:3"] and test[2]["references"] == []
    assert "region" not in preprocess(test[2], "test", OPTIONS)


def test_records_without_text_or_box_fail_in_one_line():
    with pytest.raises(OFAError, match="needs the field 'text'.*--field text="):
        preprocess({"id": "a", "image": png((8, 8))}, "test", OPTIONS)
    with pytest.raises(OFAError, match="record 'b': no box; every train record needs one"):
        preprocess({"id": "b", "image": png((8, 8)), "text": "x"}, "train", OPTIONS)


def test_decoding_may_be_restricted_to_the_bin_tokens():
    tokenizer = tiny_processor().tokenizer
    ids = allowed_tokens(OPTIONS, tokenizer)
    assert ids == list(range(tokenizer.bin_start_id, tokenizer.bin_start_id + 1000)) and ids[-1] == len(tokenizer) - 1
    assert tokenizer.eos_token_id not in ids  # the core always allows EOS itself
    assert allowed_tokens(GroundingOptions(restrict_to_bins=False), tokenizer) == list(range(len(tokenizer)))
    with pytest.raises(OFAError, match="task.options.num_bins: 1000, but the model's tokenizer has 10"):
        allowed_tokens(OPTIONS, tiny_processor(num_bins=10).tokenizer)


@pytest.mark.parametrize("name, lang, columns", [("refcoco", "en", [0, 4, 2, 3]), ("refcoco_cn", "zh", [0, 3, 1, 2])])
def test_official_recipes_validate_once_weights_and_data_exist(tmp_path, capsys, name, lang, columns):
    path = RECIPES / f"{name}.json"
    recipe = orjson.loads(path.read_bytes())
    assert (recipe["task"], recipe["data"]["reader"]["columns"], recipe["generation"]) == (
        {"name": "grounding", "lang": lang},
        columns,
        "grounding",
    )
    assert recipe["training"]["per_device_train_batch_size"] * recipe["training"]["gradient_accumulation_steps"] == 128
    tiny_checkpoint(tmp_path / "model")
    row = [""] * 5
    for column, value in zip(columns, ["1", base64.b64encode(png((32, 24))).decode(), "left man", "1,2,30,20"]):
        row[column] = value
    (tmp_path / "split.tsv").write_text("\t".join(row[: max(columns) + 1]) + "\n", encoding="utf-8")
    overrides = ["--set", f'model.checkpoint="{tmp_path / "model"}"', "--set", 'training.mixed_precision="no"']
    for split in ("train", "valid", "test"):
        overrides += ["--set", f'data.reader.{split}="{tmp_path / "split.tsv"}"']
    assert main(["recipe", "validate", str(path), *overrides]) == 0
    assert main(["recipe", "validate", str(path), "--set", 'training.mixed_precision="no"']) == 2
    assert "To set up this recipe: download" in capsys.readouterr().err
