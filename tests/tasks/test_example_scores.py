"""Per-example scores: for every built-in metric that declares `example_score`, the mean of the rows' `score`
equals the value `compute()` reports, on rows that mix right, partly right and wrong predictions."""

from __future__ import annotations

import attrs
import pytest

from ofa_core.plugin._scores import score_rows
from ofa_core.testing import registry_with

CAPTIONS = [
    ("一只红色的杯子", ["一只红色的杯子", "红色的杯子放在桌上"]),
    ("蓝色的鞋", ["一双蓝色的鞋子", "蓝色运动鞋"]),
    ("桌子", ["一个绿色的包", "绿色的手提包"]),
    ("a red cup on a table", ["a red cup on the table", "a red mug"]),
]
SAMPLES = {
    "caption": CAPTIONS,
    "cider_d": CAPTIONS,
    "vqa": [("red", ["red", "0.3|!+blue"]), ("blue", ["red", "0.3|!+blue"]), ("green", ["red"])],
    "classification": [("cat", ["cat"]), ("dog", ["cat"]), ("dog", ["dog"])],
    "grounding": [
        ([10, 10, 50, 50], [[12, 10, 50, 52]]),
        ([0, 0, 5, 5], [[20, 20, 40, 40]]),
        ([10, 10, 30, 30], [[10, 10, 50, 50]]),
        (None, [[1, 1, 2, 2]]),
    ],
    "snli_ve": [("yes", ["yes"]), ("no", ["maybe"]), ("maybe", ["maybe"])],
    "ocr": [("你好世界", ["你好世界"]), ("你好", ["你好世界"]), ("", ["abc"])],
    "rouge": [
        ("police arrest man in city", ["police arrested a man in the city"]),
        ("storm hits coast", ["rain falls"]),
    ],
    "glue": [("yes", ["yes"]), ("no", ["yes"]), ("no", ["no"])],
}
FLAG_SHARE = {
    "vqa": "exact_match",
    "classification": "accuracy",
    "grounding": "acc@0.5",
    "snli_ve": "accuracy",
    "ocr": "accuracy",
    "glue": "accuracy",
}


@pytest.fixture(scope="module")
def metrics():
    registry = registry_with(installed=True)
    return {entry.name: entry.spec for entry in registry.metrics.entries()}


def test_every_builtin_metric_with_example_scores_is_sampled(metrics):
    declared = {name for name, spec in metrics.items() if spec.example_score is not None and name in SAMPLES}
    builtin = {name for name in metrics if name in SAMPLES}
    assert declared == builtin == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_mean_of_example_scores_is_the_reported_metric(metrics, name):
    spec = metrics[name]
    options = spec.options()
    rows = [
        {"id": str(index), "prediction": prediction, "references": references}
        for index, (prediction, references) in enumerate(SAMPLES[name])
    ]
    source = score_rows([(name, spec, options)], rows)
    assert source.metric == name and source.key == spec.example_score
    metric = spec.build(options)
    metric.update([row["prediction"] for row in rows], [row["references"] for row in rows])
    reported = metric.compute()[spec.example_score]
    scores = [row["score"] for row in rows]
    assert sum(scores) / len(scores) == pytest.approx(reported, abs=1e-9)
    assert len(set(scores)) > 1, "the samples should tell examples apart"
    if name in FLAG_SHARE:  # the share of `correct` rows is the metric's accuracy
        correct = [row["correct"] for row in rows]
        assert 100 * sum(correct) / len(rows) == pytest.approx(metric.compute()[FLAG_SHARE[name]])


def test_caption_scores_use_the_whole_split_document_frequencies(metrics):
    """A caption's CIDEr-D depends on the other references of the split (document frequencies): scoring it alone
    gives another number, and the per-example scores of the split average to the split's CIDEr-D."""
    spec = metrics["caption"]
    rows = [{"id": str(i), "prediction": p, "references": r} for i, (p, r) in enumerate(CAPTIONS)]
    score_rows([("caption", spec, spec.options())], rows)
    alone = [
        {"id": "0", "prediction": CAPTIONS[0][0], "references": CAPTIONS[0][1]},
        {"id": "1", "prediction": CAPTIONS[1][0], "references": CAPTIONS[1][1]},
    ]
    score_rows([("caption", spec, spec.options())], alone)
    assert alone[0]["score"] != pytest.approx(rows[0]["score"])


def test_a_metric_without_example_scores_leaves_rows_alone(metrics):
    rows = [{"id": "0", "prediction": "x", "references": ["x"]}]
    spec = metrics["caption"]
    plain = attrs.evolve(spec, example_score=None)
    assert score_rows([("caption", plain, spec.options())], rows) is None
    assert "score" not in rows[0]
