"""The counting plugin on its own: registration, reader, targets and closed set, accuracy merging."""

import base64
import io

import ofa_plugin_counting
import orjson
import pytest
from ofa_plugin_counting import CountingOptions, closed_set, preprocess
from ofa_plugin_counting.reader import ReaderOptions, open_split

from ofa_core import plugin
from ofa_core.testing import check_metric, fake_image, registry_with


def test_registers_a_task_whose_names_resolve():
    registry = registry_with(ofa_plugin_counting, installed=True)
    task = registry.tasks.get("counting")
    assert registry.prompts.get(task.prompts["en"]).source == " how many {object} are there?"
    assert registry.prompts.get(task.prompts["zh"]).source == "图片中有几个{object}？"
    assert task.reader in registry.readers and task.loss in registry.losses
    assert all(metric in registry.metrics for metric in task.metrics)


def test_reader_paths_base64_and_bad_lines(tmp_path, caplog):
    fake_image(0, (40, 30)).save(tmp_path / "a.png")
    buffer = io.BytesIO()
    fake_image(1, (20, 10)).save(buffer, format="PNG")
    lines = [
        {"id": "x", "image": "a.png", "object": "cars", "count": 3},
        {"image": base64.b64encode(buffer.getvalue()).decode(), "object": "dogs", "count": 0},
        {"image": "a.png", "object": "cats", "count": -1},
        {"image": "a.png", "object": "cats", "count": 2.5},
    ]
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    records = list(open_split(ReaderOptions(train=str(tmp_path / "train.jsonl")), "train"))
    assert [(r["id"], r["object"], r["count"]) for r in records] == [("x", "cars", 3), ("train:2", "dogs", 0)]
    assert records[0]["image"] == str(tmp_path / "a.png") and isinstance(records[1]["image"], bytes)
    assert "train.jsonl:3: count must be a whole number >= 0, got -1" in caplog.text and "got 2.5" in caplog.text
    with pytest.raises(plugin.OFAError, match="data.reader.valid: no file"):
        list(open_split(ReaderOptions(train=str(tmp_path / "train.jsonl")), "valid"))


def test_counts_become_targets_inside_the_closed_set():
    options = CountingOptions(max_count=4)
    assert closed_set(options).answers == ("0", "1", "2", "3", "4")
    assert preprocess({"id": "a", "count": 3}, "train", options)["count"] == "3"
    assert preprocess({"id": "b", "count": None}, "test", options)["references"] == []
    with pytest.raises(plugin.OFAError, match="count 5 is above task.options.max_count"):
        preprocess({"id": "c", "count": 5}, "train", options)
    with pytest.raises(plugin.OFAError, match="no count"):
        preprocess({"id": "d", "count": None}, "valid", options)


def test_accuracy_hand_computed_and_merged_across_processes():
    registry = registry_with(ofa_plugin_counting, installed=True)
    scores = check_metric(registry.metrics.get("counting"), ["3", "two", "4", "0"], [["3"], ["2"], ["2"], ["1"]])
    assert scores == {"accuracy": 25.0, "within_one": 50.0}
