"""The demo data: reproducible to the byte, read by the real readers, self-consistent, and fully covered by its
tokenizer."""

from __future__ import annotations

import io

import orjson
from PIL import Image

from ofa_core.demo import texts
from ofa_core.demo.writer import DemoSizes, builtin_prompt_texts, generate
from ofa_core.model.processing import OFAProcessor
from ofa_core.recipe import build_options
from ofa_core.testing import registry_with

from .conftest import SMALL

TINY = DemoSizes(train_images=6, valid_images=3)


def files(root):
    return sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())


def test_the_same_seed_and_sizes_give_byte_identical_files(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    generate(first, TINY)
    generate(second, TINY)
    assert files(first) == files(second)
    for name in files(first):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    other = tmp_path / "c"
    generate(other, DemoSizes(train_images=6, valid_images=3, seed=1))
    assert (other / "images.tsv").read_bytes() != (first / "images.tsv").read_bytes()


def test_every_format_is_what_the_built_in_readers_read(small_demo):
    registry = registry_with(installed=True)

    def read(reader: str, split: str, **options) -> list[dict]:
        spec = registry.readers.get(reader)
        return list(spec.open(build_options(spec.options, options, "data.reader", small_demo), split))

    captions = read("muge", "train", folder="muge")
    photos = SMALL.train_images
    assert len(captions) == photos * SMALL.train_captions and {r["image_id"] for r in captions} == {
        f"train-{i:05d}" for i in range(photos)
    }
    valid = read("muge", "valid", folder="muge")
    assert len(valid) == SMALL.valid_images and all(len(r["references"]) == len(texts.CAPTION_TEMPLATES) for r in valid)
    assert Image.open(io.BytesIO(valid[0]["image"])).size == (128, 128)
    questions = read("vqa_jsonl", "valid", valid="vqa/valid.jsonl", images="images.tsv")
    assert len(questions) == SMALL.valid_images * len(texts.QUESTION_TEMPLATES)
    assert all(record["answer"] in texts.ANSWERS for record in questions)
    labels = read("classification_jsonl", "valid", valid="classification/valid.jsonl", images="images.tsv")
    task = registry.tasks.get("classification")
    options = build_options(task.options, {"labels_file": "classification/labels.txt"}, "task.options", small_demo)
    assert [task.preprocess(record, "valid", options)["label"] for record in labels] == [r["label"] for r in labels]
    assert len(labels) == SMALL.valid_images and labels[0]["image"] == valid[0]["image"]


def test_captions_questions_and_labels_agree_about_each_photo(small_demo):
    captions = {
        row["image_id"]: row["text"] for row in map(orjson.loads, (small_demo / "muge" / "IC_valid.jsonl").open("rb"))
    }
    labels = {
        row["id"]: row["label"] for row in map(orjson.loads, (small_demo / "classification" / "valid.jsonl").open("rb"))
    }
    for row in map(orjson.loads, (small_demo / "vqa" / "valid.jsonl").open("rb")):
        if row["question"] == texts.QUESTION_TEMPLATES["colour"][0]:
            assert all(row["answers"][0] in caption for caption in captions[row["image"]])
    assert all(all(label in caption for caption in captions[image]) for image, label in labels.items())
    assert set(labels.values()) <= set(
        (small_demo / "classification" / "labels.txt").read_text(encoding="utf-8").split()
    )


def test_the_tokenizer_knows_every_character_of_the_demo_and_the_built_in_prompts(small_demo):
    tokenizer = OFAProcessor.from_pretrained(small_demo / "model").tokenizer
    words = [*texts.ANSWERS, *(q for q, _ in texts.QUESTION_TEMPLATES.values()), *builtin_prompt_texts()]
    for row in map(orjson.loads, (small_demo / "muge" / "IC_valid.jsonl").open("rb")):
        words += row["text"]
    for text in words:
        text = text.replace("{", "").replace("}", "")
        assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"], text
        assert tokenizer.convert_tokens_to_ids("[UNK]") not in tokenizer(text)["input_ids"], text
