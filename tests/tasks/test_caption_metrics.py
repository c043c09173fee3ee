"""Caption metrics against hand-computed values, in Chinese (MUGE tokenisation) and English."""

from __future__ import annotations

import math

import pytest

from ofa_tasks.caption.metrics import CaptionMetricOptions, CaptionScores
from ofa_tasks.caption.text import tokenize_en, tokenize_zh


def scores(predictions, references, tokenize):
    metric = CaptionScores(CaptionMetricOptions(tokenize=tokenize))
    metric.update(predictions, references)
    return metric.compute()


def test_chinese_tokenisation_is_per_character_with_ascii_runs_and_fullwidth_punctuation():
    assert tokenize_zh("iPhone12 手机壳，红色！") == ["iPhone12", "手", "机", "壳", "，", "红", "色", "！"]
    assert tokenize_zh("红 色 的 鞋 子") == ["红", "色", "的", "鞋", "子"]  # spaces from decoding are dropped
    assert tokenize_zh("a-b?") == ["ab"]  # punctuation leaves the text first, as OFA's eval_caption removes it
    assert tokenize_zh("<code_12> <code_3>猫") == ["code12code3", "猫"]


def test_english_tokenisation_lowercases_and_drops_punctuation():
    assert tokenize_en("A dog, running!") == ["a", "dog", "running"]


def test_rouge_l_english_hand_computed():
    # LCS("a b c d", "a c d e") = 3 -> P = R = 3/4 -> F_beta = 0.75 whatever beta.
    assert scores(["a b c d"], [["a c d e"]], "en")["rouge_l"] == pytest.approx(75.0, abs=1e-6)


def test_rouge_l_chinese_hand_computed():
    # hyp 红色手机壳 (5 chars) is a subsequence of ref 红色的手机壳 (6): P = 1, R = 5/6, beta = 1.2.
    precision, recall, beta2 = 1.0, 5 / 6, 1.2**2
    expected = (1 + beta2) * precision * recall / (recall + beta2 * precision)
    assert scores(["红色手机壳"], [["红色的手机壳"]], "zh")["rouge_l"] == pytest.approx(100 * expected, abs=1e-6)


def test_bleu4_hand_computed():
    # "a b c d e" vs "a b c d f": precisions 4/5, 3/4, 2/3, 1/2, no brevity penalty.
    expected = (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert scores(["a b c d e"], [["a b c d f"]], "en")["bleu4"] == pytest.approx(100 * expected, abs=1e-4)
    expected_zh = expected  # the same shape in characters
    assert scores(["红色的鞋子"], [["红色的鞋袜"]], "zh")["bleu4"] == pytest.approx(100 * expected_zh, abs=1e-4)


def test_cider_d_perfect_match_on_disjoint_images_is_ten():
    # Each image's n-grams occur in one image of two: idf = log(2); hypothesis == reference gives
    # cosine 1 for every n and no length penalty, so CIDEr-D = 10 (reported x100).
    result = scores(["红色鞋子", "蓝色帽子"], [["红色鞋子"], ["蓝色帽子"]], "zh")
    assert result["cider"] == pytest.approx(1000.0, abs=1e-6)
    english = scores(
        ["a red running shoe", "two blue baseball hats"], [["a red running shoe"], ["two blue baseball hats"]], "en"
    )
    assert english["cider"] == pytest.approx(1000.0, abs=1e-6)
    # Three tokens have no 4-gram: that order contributes 0, so the mean over n = 1..4 is 7.5.
    assert scores(["a red shoe", "blue hats here"], [["a red shoe"], ["blue hats here"]], "en")[
        "cider"
    ] == pytest.approx(750.0)


def test_cider_d_rewards_the_better_caption():
    references = [["红色的运动鞋"], ["蓝色的棒球帽"]]
    good = scores(["红色运动鞋", "蓝色棒球帽"], references, "zh")["cider"]
    bad = scores(["蓝色棒球帽", "红色运动鞋"], references, "zh")["cider"]
    assert good > bad >= 0 and math.isfinite(good)


def test_state_merges_by_summation_across_processes():
    first, second = CaptionScores(CaptionMetricOptions()), CaptionScores(CaptionMetricOptions())
    first.update(["红色鞋子"], [["红色鞋子"]])
    second.update(["蓝色帽子"], [["蓝色帽子"]])
    merged = {key: first.state()[key] + second.state()[key] for key in first.state()}
    combined = CaptionScores(CaptionMetricOptions())
    combined.load_state(merged)
    assert combined.compute() == scores(["红色鞋子", "蓝色帽子"], [["红色鞋子"], ["蓝色帽子"]], "zh")


def test_mismatched_lengths_and_unknown_tokenizer_are_errors():
    with pytest.raises(ValueError, match="2 predictions but 1"):
        CaptionScores(CaptionMetricOptions()).update(["a", "b"], [["a"]])
    with pytest.raises(ValueError):
        CaptionMetricOptions(tokenize="jieba")


def test_auto_tokenization_follows_the_language_of_the_references():
    english = [["A dog runs.", "a dog running"]]
    assert scores(["a dog runs"], english, "auto") == scores(["a dog runs"], english, "en")
    chinese = [["一只红色的鞋子", "红色鞋子"]]
    assert scores(["红 色 的 鞋 子"], chinese, "auto") == scores(["红 色 的 鞋 子"], chinese, "zh")
    assert scores(["a dog runs"], english, "auto") != scores(["a dog runs"], english, "zh")
