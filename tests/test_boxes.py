"""Boxes <-> location bins with fairseq's RefCOCO quantisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_core.model.boxes import (
    bins_to_box,
    bins_to_text,
    box_to_bins,
    box_to_text,
    ids_to_bins,
    text_to_bins,
    text_to_box,
)
from ofa_core.model.tokenization import OFATokenizer


def test_official_formula_on_square_image() -> None:
    # 512x512 image, S = max_image_size = 512: v = x / 512, bin = round(v * 999), ties to even.
    assert box_to_bins((0, 0, 511.5, 256), (512, 512)) == (0, 0, 998, 500)
    assert bins_to_box((0, 0, 999, 500), (512, 512)) == pytest.approx((0, 0, 512, 500 / 999 * 512))


def test_resize_ratios_per_axis() -> None:
    # 640x320 image resized to 512x512: x scaled by 0.8, y by 1.6, then divided by 512.
    assert box_to_bins((320, 160, 640, 320), (640, 320)) == (500, 500, 999, 999)
    # A 480 resolution with the 512 normaliser leaves headroom: the full width maps below bin 999.
    assert box_to_bins((0, 0, 640, 320), (640, 320), patch_image_size=480) == (0, 0, 937, 937)


@pytest.mark.parametrize("size", [(640, 480), (333, 1000), (50, 50)])
def test_round_trip_within_half_a_bin(size: tuple[int, int]) -> None:
    box = (0.13 * size[0], 0.27 * size[1], 0.71 * size[0], 0.94 * size[1])
    recovered = bins_to_box(box_to_bins(box, size), size)
    for axis, (original, value) in enumerate(zip(box, recovered)):
        half_bin = (size[axis % 2] / 999) / 2
        assert abs(original - value) <= half_bin + 1e-9


def test_out_of_image_boxes_clamp_to_valid_bins() -> None:
    assert box_to_bins((-10, -1, 700, 900), (640, 480)) == (0, 0, 999, 999)


def test_text_helpers() -> None:
    assert bins_to_text((1, 2, 30, 400)) == "<bin_1> <bin_2> <bin_30> <bin_400>"
    assert text_to_bins("<bin_1><bin_2> x <bin_30> <bin_400></s>") == [1, 2, 30, 400]
    size = (640, 480)
    text = box_to_text((64, 48, 320, 240), size)
    assert text == bins_to_text(box_to_bins((64, 48, 320, 240), size))
    assert text_to_box(text, size) == pytest.approx((64, 48, 320, 240), abs=0.5)
    assert text_to_box("<bin_1> <bin_2>", size) is None


def test_token_ids_round_trip_through_tokenizer(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n", encoding="utf-8")
    tokenizer = OFATokenizer.from_bert_vocab(vocab)
    bins = box_to_bins((10, 20, 300, 400), (640, 480))
    ids = tokenizer(bins_to_text(bins))["input_ids"]
    assert ids == [0, *(tokenizer.bin_token_id(b) for b in bins), 2]
    assert ids_to_bins(ids, tokenizer.bin_start_id) == list(bins)
    assert text_to_bins(tokenizer.decode(ids, skip_special_tokens=True)) == list(bins)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="4 values"):
        box_to_bins((1, 2, 3), (10, 10))
    with pytest.raises(ValueError, match="image_size"):
        bins_to_box((1, 2, 3, 4), (0, 10))
