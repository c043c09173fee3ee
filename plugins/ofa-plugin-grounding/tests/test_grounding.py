"""The grounding plugin on its own: registration, reader, box <-> bins round trip, Acc@0.5 merging."""

import base64
import io

import orjson
import pytest

import ofa_plugin_grounding
from ofa_core.plugin import OFAError
from ofa_core.plugin.testing import check_metric, fake_image, registry_with
from ofa_plugin_grounding.metric import MetricOptions, build_metric
from ofa_plugin_grounding.reader import ReaderOptions, open_split
from ofa_plugin_grounding.task import postprocess, preprocess


def test_registers_a_task_whose_names_resolve():
    registry = registry_with(ofa_plugin_grounding, installed=True)
    task = registry.tasks.get("grounding")
    assert registry.prompts.get(task.prompts["en"]).source == ' which region does the text " {text} " describe?'
    assert registry.prompts.get(task.prompts["zh"]).source == '这段文字" {text} "描述的是哪个区域？'
    assert task.reader in registry.readers and task.loss in registry.losses
    assert all(metric in registry.metrics for metric in task.metrics)
    assert task.generation == "grounding"


def test_reader_paths_base64_and_errors(tmp_path):
    fake_image(0, (40, 30)).save(tmp_path / "a.png")
    buffer = io.BytesIO()
    fake_image(1, (20, 10)).save(buffer, format="PNG")
    lines = [{"id": "x", "image": "a.png", "text": "a car", "box": [1, 2, 30, 20]},
             {"image": base64.b64encode(buffer.getvalue()).decode(), "text": "a dog", "box": [0, 0, 10, 5]}]
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    records = list(open_split(ReaderOptions(train=str(tmp_path / "train.jsonl")), "train"))
    assert records[0]["image"] == str(tmp_path / "a.png") and records[0]["references"] == ["1 2 30 20"]
    assert isinstance(records[1]["image"], bytes) and records[1]["id"] == "train:2"
    with pytest.raises(OFAError, match="data.reader.valid: no JSONL file"):
        list(open_split(ReaderOptions(train=str(tmp_path / "train.jsonl")), "valid"))
    (tmp_path / "bad.jsonl").write_text('{"image": "a.png", "text": "t", "box": [1, 2]}\n')
    with pytest.raises(OFAError, match=r"bad.jsonl:1: box must be four numbers"):
        list(open_split(ReaderOptions(train=str(tmp_path / "bad.jsonl")), "train"))


def test_box_becomes_bins_and_back(tmp_path):
    fake_image(0, (200, 100)).save(tmp_path / "a.png")
    record = preprocess({"image": str(tmp_path / "a.png"), "box": [20.0, 10.0, 120.0, 90.0]}, "train", None)
    assert record["image_size"] == (200, 100) and record["region"].count("<bin_") == 4
    box = [float(v) for v in postprocess(record["region"], record, None).split()]
    assert box == pytest.approx([20.0, 10.0, 120.0, 90.0], abs=0.3)
    assert postprocess("no box here", record, None) == ""


def test_accuracy_merges_across_processes():
    registry = registry_with(ofa_plugin_grounding, installed=True)
    scores = check_metric(registry.metrics.get("grounding_acc"), ["0 0 10 10", "junk", "0 0 10 5", "5 5 9 9"],
                          [["0 0 10 10"], ["0 0 10 10"], ["0 0 10 10"], ["0 0 1 1"]])
    assert scores["acc@0.5"] == 0.5


def test_accuracy_state_merges_by_sum():
    first, second, merged = (build_metric(MetricOptions()) for _ in range(3))
    first.update(["0 0 10 10", "garbage"], [["0 0 10 10"], ["0 0 10 10"]])
    second.update(["0 0 10 5"], [["0 0 10 10"]])  # IoU 0.5 exactly: a hit
    merged.load_state({key: first.state()[key] + second.state()[key] for key in first.state()})
    assert merged.compute() == pytest.approx({"acc@0.5": 2 / 3, "miou": 0.5})
    strict = build_metric(MetricOptions(iou_threshold=0.9))
    strict.update(["0 0 10 5"], [["0 0 10 10"]])
    assert strict.compute()["acc@0.9"] == 0.0
