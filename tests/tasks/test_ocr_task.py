"""The built-in `ocr` task against OFA-OCR's code, read for facts: the prompt and its ids, the aspect-keeping resize
and edge padding, label normalisation, space-free exact match, readers, the official search and recipe."""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path

import numpy as np
import orjson
import pytest
from PIL import Image

from ofa_core.cli import main
from ofa_core.data.encode import RecordEncoder
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.search import OFFICIAL_SEARCH
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.plugin import BadRecordError, OFAError
from ofa_core.testing import check_metric, fake_image, registry_with, tiny_checkpoint
from ofa_tasks.ocr.image import pad_offset, resized_size, square
from ofa_tasks.ocr.metrics import OcrScores
from ofa_tasks.ocr.plugin import PROMPTS, OcrOptions, postprocess, preprocess
from ofa_tasks.ocr.readers import OcrJsonlOptions, OcrTsvOptions, read_ocr_jsonl, read_ocr_tsv
from ofa_tasks.ocr.text import normalise_label

SPEC = Path(__file__).resolve().parents[2].parent / "shared/spec"
BERT_CN_VOCAB = SPEC / "BERT_CN_vocab.txt"
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "official" / "ocr_cn.json"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def zh() -> OFATokenizer:
    if not BERT_CN_VOCAB.is_file():
        pytest.skip(f"{BERT_CN_VOCAB} not present")
    return OFATokenizer.from_bert_vocab(BERT_CN_VOCAB)


def test_components_are_registered_with_the_official_prompt_and_search():
    registry = registry_with(installed=True)
    task = registry.tasks.get("ocr")
    assert registry.prompts.get(task.prompts["zh"]).source == "图片上的文字是什么?"
    assert (task.reader, task.metrics, task.generation) == ("ocr_tsv", ("ocr",), "ocr-zh")
    assert {"ocr_tsv", "ocr_jsonl"} <= set(registry.readers.names())
    search = OFFICIAL_SEARCH["ocr-zh"]  # evaluate_ocr.sh: --beam 5 --max-len-b 64 --no-repeat-ngram-size 0
    assert (search.beam, search.max_len_b, search.max_len_a, search.no_repeat_ngram_size) == (5, 64, 0, 0)


@pytest.mark.parametrize(
    "size, resized",
    [
        ((1000, 200), (480, 96)),  # landscape: 480 * 200/1000 = 96
        ((200, 1000), (96, 480)),  # portrait
        ((641, 480), (480, 359)),  # int(359.43...) rounds down
        ((300, 300), (480, 480)),  # a square fills the square
        ((480, 30), (480, 64)),  # never shorter than 64
        ((20, 10), (480, 240)),  # small images are enlarged
    ],
)
def test_the_official_resize_keeps_the_aspect_ratio(size, resized):
    assert resized_size(*size, 480) == resized


def test_evaluation_pads_around_the_centre_with_the_edge_pixels():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 500, 3), dtype=np.uint8))
    out = np.asarray(square(image, 480))
    assert out.shape == (480, 480, 3)
    resized = np.asarray(image.resize((480, 96), Image.Resampling.BICUBIC))
    top = pad_offset(96, 480, None)
    assert top == 192  # (480 - 96) // 2
    assert np.array_equal(out[top : top + 96], resized)
    assert (out[:top] == resized[0]).all() and (out[top + 96 :] == resized[-1]).all()


def test_portrait_images_are_padded_left_and_right():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 100, 3), dtype=np.uint8))
    out = np.asarray(square(image, 480))
    resized = np.asarray(image.resize((160, 480), Image.Resampling.BICUBIC))
    assert np.array_equal(out[:, 160:320], resized)  # (480 - 160) // 2 = 160
    assert (out[:, :160] == resized[:, :1]).all() and (out[:, 320:] == resized[:, -1:]).all()


def test_training_offsets_are_uniform_draws_seeded_by_the_record():
    offsets = {pad_offset(96, 480, random.Random(f"0:{index}")) for index in range(200)}
    assert min(offsets) >= 0 and max(offsets) <= 384 and len(offsets) > 100
    image = png(fake_image(0, (500, 100)))
    first = preprocess({"id": "a", "image": image, "text": "x"}, "train", OcrOptions())
    again = preprocess({"id": "a", "image": image, "text": "x"}, "train", OcrOptions())
    assert np.array_equal(np.asarray(first["image"]), np.asarray(again["image"]))
    centred = preprocess({"id": "a", "image": image, "text": "x"}, "valid", OcrOptions())
    assert not np.array_equal(np.asarray(first["image"]), np.asarray(centred["image"]))


def test_the_processor_leaves_the_padded_square_as_it_is():
    padded = square(fake_image(3, (90, 40)), 480)
    tensor = OFAImageProcessor(patch_image_size=480).to_tensor(padded)
    pixels = np.rint((tensor.permute(1, 2, 0).numpy() * 0.5 + 0.5) * 255).astype(np.uint8)
    assert np.array_equal(pixels, np.asarray(padded))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("圖片上的文字", "图片上的文字"),  # traditional -> simplified
        ("ＡＢＣ１２３（中）", "abc123(中)"),  # NFKC folds full-width forms, then lower case
        ("Hello World", "hello world"),  # spaces stay in the label; scoring removes them
        ("一二三四五六七八九十" * 4, ("一二三四五六七八九十" * 3)),  # 30 characters
    ],
)
def test_label_normalisation(text, expected):
    assert normalise_label(text) == expected


def test_labels_are_cut_before_lower_casing_as_the_official_dataset():
    assert normalise_label("İİİ", 2) == "i̇i̇"  # U+0130 lower-cases to two code points, after the cut


def test_records_get_the_square_the_label_and_space_free_references():
    record = preprocess(
        {"id": "1", "image": png(fake_image(0, (300, 60))), "text": "中文 ABC"}, "valid", OcrOptions(max_chars=5)
    )
    assert record["image"].size == (480, 480)
    assert (record["label"], record["references"]) == ("中文 ab", ["中文ab"])
    small = preprocess(
        {"id": "2", "image": fake_image(0, (30, 60)), "text": "x"}, "train", OcrOptions(patch_image_size=64)
    )
    assert small["image"].size == (64, 64)
    unlabelled = preprocess({"id": "3", "image": png(fake_image(0, (30, 60)))}, "test", OcrOptions())
    assert (unlabelled["label"], unlabelled["references"]) == ("", [])
    with pytest.raises(OFAError, match="record '4': no text; every train record needs the text in its image as 'text'"):
        preprocess({"id": "4", "image": png(fake_image(0))}, "train", OcrOptions())
    with pytest.raises(OFAError, match="record '5': no image"):
        preprocess({"id": "5", "image": None, "text": "x"}, "train", OcrOptions())
    with pytest.raises(OFAError, match="record '6': cannot read the image"):
        preprocess({"id": "6", "image": b"not an image", "text": "x"}, "train", OcrOptions())
    with pytest.raises(ValueError):
        OcrOptions(patch_image_size=32)


def test_source_and_target_ids_with_the_official_vocabulary(zh):
    record = preprocess({"id": "1", "image": png(fake_image(0)), "text": "營業時間"}, "train", OcrOptions())
    example = RecordEncoder(zh, PROMPTS["zh"]).encode(record)
    lines = BERT_CN_VOCAB.read_text(encoding="utf-8").split("\n")
    # BERT splits CJK and punctuation into characters; fairseq id = vocab.txt line + 4.
    assert example.source_ids == (0, *[lines.index(character) + 4 for character in "图片上的文字是什么?"], 2)
    assert example.labels == (*[lines.index(character) + 4 for character in "营业时间"], 2)
    assert example.decoder_input_ids == (0, *example.labels[:-1])


def test_postprocess_removes_spaces():
    assert postprocess("中文 abc 12", {}, OcrOptions()) == "中文abc12"


def test_scores_hand_computed_and_merged_across_processes():
    spec = registry_with(installed=True).metrics.get("ocr")
    predictions = ["营业时间", "营业 时间", "营业", "", "abcd"]
    references = [["营业时间"], ["营业时间"], ["营业时间"], [""], ["abce"]]
    scores = check_metric(spec, predictions, references)
    # hits: 1, 2, 4; distances 0, 0, 2/4, 0 (two empty texts), 1/4
    assert scores == pytest.approx({"accuracy": 60.0, "ned": 100 * (1 - 0.75 / 5)})
    assert OcrScores(None).compute() == {"accuracy": 0.0, "ned": 0.0}


def test_tsv_reader_reads_the_official_columns_and_skips_bad_images(tmp_path):
    path = tmp_path / "ocr.tsv"
    image = base64.urlsafe_b64encode(png(fake_image(0, (40, 20)))).decode()
    path.write_text(f"7\t{image}\t營業時間\n8\tnot-base64!\tx\n", encoding="utf-8")
    records = list(read_ocr_tsv(OcrTsvOptions(test=str(path)), "test"))
    assert [(r["id"], r["text"]) for r in records] == [("7", "營業時間")]
    assert Image.open(io.BytesIO(records[0]["image"])).size == (40, 20)
    with pytest.raises(BadRecordError, match="ocr.tsv:2: column 1 \\(image\\)"):
        list(read_ocr_tsv(OcrTsvOptions(test=str(path), bad_records="error"), "test"))
    swapped = tmp_path / "swapped.tsv"
    swapped.write_text(f"營業時間\t7\t{image}\n", encoding="utf-8")
    assert [r["id"] for r in read_ocr_tsv(OcrTsvOptions(test=str(swapped), columns=[1, 2, 0]), "test")] == ["7"]


def test_jsonl_reader_takes_paths_and_leaves_text_out_only_in_test(tmp_path):
    fake_image(0, (40, 20)).save(tmp_path / "a.png")
    path = tmp_path / "ocr.jsonl"
    path.write_bytes(b'{"id": "a", "image": "a.png", "text": "\\u4e2d"}\n{"id": "b", "image": "a.png"}\n')
    assert [r["id"] for r in read_ocr_jsonl(OcrJsonlOptions(train=str(path)), "train")] == ["a"]
    assert [r.get("text") for r in read_ocr_jsonl(OcrJsonlOptions(test=str(path)), "test")] == ["中", None]


def test_the_official_recipe_validates_with_data_and_a_model(tmp_path):
    recipe = orjson.loads(RECIPE.read_bytes())
    assert (recipe["task"], recipe["data"]["reader"]["columns"], recipe["generation"]) == (
        {"name": "ocr", "lang": "zh", "options": {"patch_image_size": 480, "max_chars": 30}},
        [0, 1, 2],
        "ocr-zh",
    )
    tiny_checkpoint(tmp_path / "model")
    image = base64.urlsafe_b64encode(png(fake_image(0, (40, 20)))).decode()
    (tmp_path / "split.tsv").write_text(f"1\t{image}\t中文\n", encoding="utf-8")
    overrides = ["--set", f'model.checkpoint="{tmp_path / "model"}"', "--set", 'training.mixed_precision="no"']
    for split in ("train", "valid", "test"):
        overrides += ["--set", f'data.reader.{split}="{tmp_path / "split.tsv"}"']
    assert main(["recipe", "validate", str(RECIPE), *overrides]) == 0
