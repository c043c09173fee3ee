"""ofa_core.testing helpers that plugin authors build their tests on."""

import pytest
from PIL import Image

from ofa_core.plugin import MetricSpec, NoOptions
from ofa_core.testing import check_metric, fake_image, tiny_dataset, tiny_processor, tiny_vocabulary


def test_tiny_dataset_writes_images_and_records(tmp_path):
    records = tiny_dataset(tmp_path / "data", count=3)
    assert [r["id"] for r in records] == ["0", "1", "2"]
    assert Image.open(records[0]["image"]).size == (40, 30) and records[0]["references"] == [records[0]["caption"]]


def test_tiny_processor_tokenizes_english_and_chinese_prompts_without_unknowns():
    processor = tiny_processor()
    assert len(tiny_vocabulary()) == len(set(tiny_vocabulary()))
    encoded = processor(
        text=[' which region does the text " a red car " describe?', '这段文字" a dog "描述的是哪个区域？'],
        images=[fake_image(0), None],
    )
    assert processor.tokenizer.unk_token_id not in encoded["input_ids"].flatten().tolist()
    assert processor.tokenizer.convert_tokens_to_ids("[UNK]") not in encoded["input_ids"].flatten().tolist()
    assert encoded["patch_masks"].tolist() == [True, False]


class MeanOnly:
    """A metric that keeps an average in its state: wrong once evaluation is split across processes."""

    def __init__(self, options):
        self.mean = 0.0

    def update(self, predictions, references):
        self.mean = sum(p in r for p, r in zip(predictions, references)) / len(predictions)

    def state(self):
        return {"mean": self.mean}

    def load_state(self, merged):
        self.mean = merged["mean"]

    def compute(self):
        return {"acc": self.mean}


def test_check_metric_catches_states_that_do_not_add_up():
    with pytest.raises(AssertionError, match="state\\(\\) must add up"):
        check_metric(
            MetricSpec(NoOptions, MeanOnly, higher_is_better=True), ["a", "b", "c", "d"], [["a"], ["x"], ["x"], ["x"]]
        )
