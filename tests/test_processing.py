"""OFAProcessor: joint text + image encoding, decoding, save/load and Auto registration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoProcessor, AutoTokenizer

from ofa_core.model.auto import register_auto_classes
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.processing import OFAProcessor
from ofa_core.model.tokenization import OFATokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "?", "图", "片", "描", "述", "了", "什", "么"]


def fid(token: str) -> int:
    return VOCAB.index(token) + 4


@pytest.fixture
def config() -> OFAConfig:
    return OFAConfig.from_preset("tiny-test")


@pytest.fixture
def processor(tmp_path: Path, config: OFAConfig) -> OFAProcessor:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return OFAProcessor(OFAImageProcessor.from_config(config), OFATokenizer.from_bert_vocab(vocab))


def image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))


def test_text_and_images(processor: OFAProcessor) -> None:
    out = processor(text=["图片描述了什么?", "图片"], images=[image(0), image(1)])
    assert set(out) == {"input_ids", "attention_mask", "patch_images", "patch_masks"}
    assert out["input_ids"].tolist()[1] == [0, fid("图"), fid("片"), 2, 1, 1, 1, 1, 1, 1]
    assert out["attention_mask"].tolist()[1] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert out["patch_images"].shape == (2, 3, 64, 64)
    assert out["patch_masks"].tolist() == [True, True]
    torch.testing.assert_close(out["patch_images"], processor.image_processor([image(0), image(1)])["patch_images"])


def test_text_only_gets_blank_masked_images(processor: OFAProcessor) -> None:
    out = processor(text="图片")
    assert out["input_ids"].tolist() == [[0, fid("图"), fid("片"), 2]]
    assert out["patch_masks"].tolist() == [False]
    assert torch.count_nonzero(out["patch_images"]) == 0


def test_mismatched_batch_and_empty_call(processor: OFAProcessor) -> None:
    with pytest.raises(ValueError, match="2 texts but 1 images"):
        processor(text=["图", "片"], images=image(0))
    with pytest.raises(ValueError, match="needs text, images or both"):
        processor()


def test_truncation_and_decode(processor: OFAProcessor) -> None:
    out = processor(text="图片描述了什么", truncation=True, max_length=4)
    assert out["input_ids"].tolist() == [[0, fid("图"), fid("片"), 2]]
    ids = processor(text=["图片描述", "什么?"])["input_ids"]
    assert processor.batch_decode(ids, skip_special_tokens=True) == ["图片描述", "什么?"]
    assert processor.decode(ids[0], skip_special_tokens=True) == "图片描述"


def test_register_auto_classes_is_idempotent(tmp_path: Path, config: OFAConfig) -> None:
    register_auto_classes()
    register_auto_classes()
    config.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is OFAConfig


def test_save_load_round_trip(processor: OFAProcessor, config: OFAConfig, tmp_path: Path) -> None:
    register_auto_classes()
    config.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    expected = processor(text=["图片描述了什么?", "图"], images=[image(2), None])
    for loaded in (AutoProcessor.from_pretrained(tmp_path), OFAProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is OFAProcessor
        assert type(loaded.tokenizer) is OFATokenizer
        assert type(loaded.image_processor) is OFAImageProcessor
        got = loaded(text=["图片描述了什么?", "图"], images=[image(2), None])
        for key in expected:
            torch.testing.assert_close(got[key], expected[key])
        assert loaded.batch_decode(got["input_ids"], skip_special_tokens=True) == ["图片描述了什么?", "图"]
    assert type(AutoTokenizer.from_pretrained(tmp_path)) is OFATokenizer
    assert AutoImageProcessor.from_pretrained(tmp_path).patch_image_size == 64
