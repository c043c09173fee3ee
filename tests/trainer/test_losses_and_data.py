"""The default loss against its formula, and the data path: ids, grouping, per-process batches, bad images."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
import torch.nn.functional as F

from ofa_core import OFAError
from ofa_core.data import Collator, GroupDataset, epoch_batches, group_examples
from ofa_core.trainer.losses import label_smoothed_cross_entropy
from ofa_core.trainer.optim import lr_factor
from ofa_core.trainer.plugin import LABEL_SMOOTHED_CE, LabelSmoothingOptions

from .helpers import examples, make_processor


def test_label_smoothing_matches_fairseq_formula() -> None:
    logits = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[1, 2, -100], [3, -100, -100]])
    out = label_smoothed_cross_entropy(logits, labels, 0.1)
    lprobs = F.log_softmax(logits, -1)
    expected = 0.0
    for b, t in [(0, 0), (0, 1), (1, 0)]:
        nll, smooth, eps_i = -lprobs[b, t, labels[b, t]], -lprobs[b, t].sum(), 0.1 / 6
        expected += (1 - 0.1 - eps_i) * nll + eps_i * smooth
    assert out.sample_size == 3 and math.isclose(float(out.loss_sum), float(expected), rel_tol=1e-6)
    plain = label_smoothed_cross_entropy(logits, labels, 0.0).loss_sum
    assert torch.allclose(plain, F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum"))
    built = LABEL_SMOOTHED_CE.build(LabelSmoothingOptions(label_smoothing=0.1))
    assert torch.equal(built(type("O", (), {"logits": logits})(), {"labels": labels}).loss_sum, out.loss_sum)


def test_schedules() -> None:
    assert lr_factor("linear", 5, 10, 110) == 0.5 and lr_factor("linear", 60, 10, 110) == 0.5
    assert math.isclose(lr_factor("cosine", 60, 10, 110), 0.5) and lr_factor("cosine", 110, 10, 110) < 1e-12
    assert lr_factor("constant", 100, 10, 110) == 1.0 and lr_factor("polynomial", 110, 0, 110) == 0.0


def test_ids_grouping_and_collate(tmp_path) -> None:
    processor = make_processor(tmp_path)
    data = examples(processor, images=3, captions_per_image=2)
    first = data[0]
    assert first.source_ids[0] == 0 and first.source_ids[-1] == 2
    assert first.decoder_input_ids[0] == 0 and first.labels[-1] == 2
    assert first.decoder_input_ids[1:] == first.labels[:-1]
    groups = group_examples(data, by_image=True)
    assert groups == [[0, 1], [2, 3], [4, 5]]
    batch = Collator(1, 32)([GroupDataset(data, groups, processor.image_processor)[g] for g in (0, 2)])
    assert batch["input_ids"].shape[0] == 2 and batch["decoder_input_ids"].shape[0] == 4
    assert batch["encoder_index"].tolist() == [0, 0, 1, 1] and batch["num_dropped"] == 0


def test_processes_split_the_one_process_batches() -> None:
    groups = [[i] * size for i, size in enumerate([1, 3, 2, 1, 1, 2, 3, 1])]
    one = epoch_batches(groups, 8, 1, 0, seed=1, epoch=0, shuffle=True, drop_last=True)
    two = [epoch_batches(groups, 4, 2, rank, seed=1, epoch=0, shuffle=True, drop_last=True) for rank in (0, 1)]
    assert [a + b for a, b in zip(*two)] == one
    assert all(a and b for a, b in zip(*two))


def test_bad_image_is_skipped_and_counted(tmp_path) -> None:
    processor = make_processor(tmp_path)
    data = examples(processor, images=2, captions_per_image=2)
    broken = [attrs.evolve(e, image=b"not an image") if e.image_key == ("id", 1) else e for e in data]
    groups = group_examples(broken, by_image=True)
    dataset = GroupDataset(broken, groups, processor.image_processor, "skip")
    batch = Collator(1, 32)([dataset[0], dataset[1]])
    assert batch["num_dropped"] == 2 and batch["decoder_input_ids"].shape[0] == 2
    strict = GroupDataset(broken, groups, processor.image_processor, "error")
    with pytest.raises(OFAError, match="1-0"):
        strict[1]
