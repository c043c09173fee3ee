"""The `cider_d` reward: CIDEr-D values computed by hand, and its document frequencies cached beside the references."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from ofa_tasks.caption.cider_d import CiderD, CiderDOptions, DocumentFrequency, cache_path

# Two training documents: {a b} and {c d}. With the end token, log(N) = log 2 and '<eos>' occurs in both documents
# (idf 0); every other n-gram seen occurs in one (idf log 2); an unseen n-gram counts as seen once (idf log 2).
TRAIN = [["a b"], ["c d"]]


def fitted() -> CiderD:
    metric = CiderD(CiderDOptions(tokenize="en"))
    metric.fit(TRAIN)
    return metric


def test_a_candidate_equal_to_its_reference_scores_one_per_n_gram_order_it_has() -> None:
    # 'a b <eos>' has 1-, 2- and 3-grams, each vector equal to the reference's: cosine 1; no 4-gram: 0.
    # CIDEr-D = 10 * (1 + 1 + 1 + 0) / 4 = 7.5
    assert fitted().rewards(["a b"], [["a b"]]) == [pytest.approx(7.5)]


def test_a_shorter_candidate_by_hand() -> None:
    # 'a <eos>' vs 'a b <eos>'. 1-grams: candidate (a: l, eos: 0), reference (a: l, b: l, eos: 0) with l = log 2:
    # overlap l*l over norms l * sqrt(2) l = 1/sqrt(2). 2-grams 'a <eos>' vs 'a b', 'b <eos>': 0. No 3-grams: 0.
    # Gaussian length penalty exp(-(2 - 3)^2 / (2 * 6^2)). CIDEr-D = 10 * (1/sqrt(2)) * penalty / 4
    expected = 10 * (1 / math.sqrt(2)) * math.exp(-1 / 72) / 4
    assert fitted().rewards(["a"], [["a b"]]) == [pytest.approx(expected)]


def test_clipping_and_several_references_by_hand() -> None:
    # 'a a <eos>' vs references 'a b' and 'c d'. Against 'a b <eos>': 1-grams candidate (a: 2l, eos: 0), reference
    # (a: l, b: l): overlap min(2l, l) * l = l^2 over norms 2l * sqrt(2) l = 1/(2 sqrt(2)); 2-grams 'a a', 'a <eos>'
    # share nothing with 'a b', 'b <eos>'. Against 'c d <eos>': nothing shared. Equal lengths: no penalty.
    # CIDEr-D = 10 * (1/(2 sqrt(2)) + 0) / 4 / 2 references
    expected = 10 * (1 / (2 * math.sqrt(2))) / 4 / 2
    assert fitted().rewards(["a a"], [["a b", "c d"]]) == [pytest.approx(expected)]


def test_chinese_is_scored_per_character() -> None:
    metric = CiderD(CiderDOptions(tokenize="zh"))
    metric.fit([["红色杯子"], ["蓝色帽子"]])
    exact, other = metric.rewards(["红色杯子", "蓝色帽子"], [["红色杯子"], ["红色杯子"]])
    assert exact > 0 and other < exact


def test_as_a_metric_it_reports_the_mean_times_100() -> None:
    metric = fitted()
    metric.update(["a b", "a"], [["a b"], ["a b"]])
    expected = 100 * (7.5 + 10 * (1 / math.sqrt(2)) * math.exp(-1 / 72) / 4) / 2
    assert metric.compute() == {"cider_d": pytest.approx(expected)}


def test_cached_frequencies_equal_a_fresh_computation_and_follow_the_file(tmp_path: Path) -> None:
    references = [["一只红色的猫", "红猫"], ["蓝色帽子"], ["a dog, running"]]
    source = tmp_path / "IC_train.jsonl"
    source.write_bytes(b"".join(orjson.dumps(refs) + b"\n" for refs in references))
    fresh = CiderD(CiderDOptions())
    fresh.fit(references)
    first = CiderD(CiderDOptions())
    first.fit(references, source)
    assert cache_path(source, "auto").is_file() and first.frequency == fresh.frequency
    cached = CiderD(CiderDOptions())
    cached.fit([["ignored: the cache matches the file"]], source)
    assert cached.frequency == fresh.frequency
    source.write_bytes(source.read_bytes() + b'["new"]\n')  # the file changed: frequencies are rebuilt
    rebuilt = CiderD(CiderDOptions())
    rebuilt.fit([*references, ["new"]], source)
    assert rebuilt.frequency.documents == 4 and rebuilt.frequency.counts["new"] == 1
    cache_path(source, "auto").write_text("not json")  # a damaged cache is rebuilt, never trusted
    repaired = CiderD(CiderDOptions())
    repaired.fit([*references, ["new"]], source)
    assert repaired.frequency == rebuilt.frequency
    assert orjson.loads(cache_path(source, "auto").read_bytes())["documents"] == 4


def test_document_frequency_counts_documents_not_sentences() -> None:
    frequency = DocumentFrequency.of([[["a", "b", "<eos>"], ["a", "<eos>"]], [["a", "<eos>"]]])
    assert frequency.documents == 2 and frequency.counts["a"] == 2 and frequency.counts["a b"] == 1


def test_unfitted_it_agrees_with_pycocoevalcap_given_the_same_tokens() -> None:
    from pycocoevalcap.cider.cider import Cider

    predictions = ["a dog runs", "a cat sits on a mat", "two birds"]
    references = [
        ["a dog is running", "the dog runs"],
        ["a cat on a mat", "cat sitting"],
        ["birds in the sky", "two birds fly"],
    ]
    metric = CiderD(CiderDOptions(tokenize="en"))
    metric.update(predictions, references)
    ends = {i: [f"{ref} <eos>" for ref in refs] for i, refs in enumerate(references)}
    score, _ = Cider().compute_score(ends, {i: [f"{text} <eos>"] for i, text in enumerate(predictions)})
    assert metric.compute()["cider_d"] == pytest.approx(100 * score)
