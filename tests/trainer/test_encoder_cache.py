"""The encoder-output cache of LiT runs (training.encoder_cache) and batches that count examples."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ofa_core.data.grouping import epoch_batches, example_batches
from ofa_core.recipe.training import TrainingConfig

from .helpers import kill_while_saving
from .test_distributed import _free_port
from .test_train import losses, make_trainer

LIT = {"freeze_encoder": True, "freeze_word_embed": True}
ALIGNED = {"images": 6, "captions": 4, "per_device_train_batch_size": 8}
"""Two whole images a step: the uncached run's encoder always sees batches of two, so its outputs are the
stored ones bit for bit (CPU kernels round differently for other batch sizes)."""


def lit_trainer(directory: Path, **options):
    """A LiT run whose cache is on disk in float32 (tests/trainer/helpers.kill_while_saving builds it by name)."""
    settings = {
        **LIT,
        **ALIGNED,
        "encoder_cache_memory_mb": 0,
        "encoder_cache_dtype": "float32",
        "max_steps": 9,
        "save_strategy": "steps",
        "save_steps": 3,
        "resume_from_checkpoint": "auto",
        **options,
    }
    return make_trainer(directory, **settings)


def _worst(one: dict[int, float], two: dict[int, float]) -> float:
    assert one.keys() == two.keys()
    return max(abs(one[step] - two[step]) for step in one)


def test_memory_cache_is_bitwise_the_uncached_run_and_skips_the_encoder(tmp_path: Path, monkeypatch) -> None:
    plain = make_trainer(tmp_path / "plain", max_steps=12, encoder_cache=False, **LIT, **ALIGNED)
    plain.train()
    assert plain.run.encoder_caches == [None]
    decoded = []
    cached = make_trainer(tmp_path / "cached", max_steps=12, **LIT, **ALIGNED)
    original = cached.processor.image_processor.to_tensor
    monkeypatch.setattr(
        cached.processor.image_processor, "to_tensor", lambda image: decoded.append(1) or original(image)
    )
    cached.train()
    cache = cached.run.encoder_caches[0]
    assert cache.storage.dtype == torch.float32 and cache.files is None
    assert (cache.misses, cache.hits) == (6, 3 * 3 * 2)  # 6 images computed in epoch 1, read in epochs 2 to 4
    assert len(decoded) == 6  # later epochs do not decode the images either
    assert losses(tmp_path / "cached" / "run") == losses(tmp_path / "plain" / "run")


@pytest.mark.parametrize("dtype,bound", [("float16", 1e-4), ("bfloat16", 1e-3)])
def test_half_precision_cache_moves_losses_by_its_rounding(tmp_path: Path, dtype: str, bound: float) -> None:
    make_trainer(tmp_path / "plain", max_steps=12, encoder_cache=False, **LIT, **ALIGNED).train()
    trainer = make_trainer(tmp_path / dtype, max_steps=12, encoder_cache_dtype=dtype, **LIT, **ALIGNED)
    trainer.train()
    assert trainer.run.encoder_caches[0].storage.dtype == getattr(torch, dtype)
    plain, cached = losses(tmp_path / "plain" / "run"), losses(tmp_path / dtype / "run")
    assert all(plain[step] == cached[step] for step in (1, 2, 3))  # epoch 1 uses the outputs as computed
    assert 0 < _worst(plain, cached) <= bound


def test_disk_cache_survives_a_kill_and_rebuilds_a_truncated_or_partial_file(tmp_path: Path) -> None:
    lit_trainer(tmp_path / "whole").train()
    reference = losses(tmp_path / "whole" / "run")
    killed = tmp_path / "killed"
    kill_while_saving("test_encoder_cache:lit_trainer", killed, step=6)  # checkpoint-3 stays; the cache was committed
    (folder,) = (killed / "run" / "encoder-cache" / "train").glob("*/rank-0")
    assert (folder / "filled.bin").read_bytes() == bytes([1]) * 6
    for case in ("kept", "truncated", "partial"):
        run = tmp_path / case
        shutil.copytree(killed, run)
        rows, flags = run / folder.relative_to(killed) / "rows.bin", run / folder.relative_to(killed) / "filled.bin"
        if case == "truncated":
            with open(rows, "r+b") as handle:
                handle.truncate(rows.stat().st_size // 2)
        if case == "partial":
            flags.write_bytes(bytes([1, 0, 1, 0, 1, 0]))
        trainer = lit_trainer(run)
        trainer.train()
        cache = trainer.run.encoder_caches[0]
        assert cache.misses == {"kept": 0, "truncated": 6, "partial": 3}[case]
        assert flags.read_bytes() == bytes([1]) * 6
        resumed = {
            step: loss for step, loss in losses(run / "run").items() if step > 3
        }  # the later line of a step counts
        assert sorted(resumed) == [4, 5, 6, 7, 8, 9]
        if case == "partial":  # a batch of one stored and one computed image runs the encoder on one row
            assert _worst(resumed, {step: reference[step] for step in resumed}) <= 1e-5
        else:
            assert resumed == {step: reference[step] for step in resumed}


def test_disk_cache_is_keyed_by_the_encoder_weights(tmp_path: Path, capsys) -> None:
    lit_trainer(tmp_path, max_steps=3).train()
    root = tmp_path / "run" / "encoder-cache" / "train"
    (first,) = root.iterdir()
    trainer = lit_trainer(tmp_path, max_steps=3, resume_from_checkpoint=None, save_strategy="no")
    with torch.no_grad():
        trainer.model.get_encoder().layer_norm.weight.add_(0.5)
    trainer.train()
    (second,) = root.iterdir()  # the other weights' rows are deleted
    assert second.name != first.name and trainer.run.encoder_caches[0].misses == 6
    assert "0 stored" in capsys.readouterr().err


def test_cache_is_off_where_the_encoder_output_can_change(tmp_path: Path, capsys) -> None:
    trainer = make_trainer(tmp_path / "embed", max_steps=1, freeze_encoder=True)
    trainer.train()
    assert trainer.run.encoder_caches == [None]
    assert "encoder cache off: the shared word embedding, the encoder's input, trains" in capsys.readouterr().err
    trainer = make_trainer(tmp_path / "random", max_steps=1, **LIT)
    trainer.processor.image_processor.randomized = True
    trainer.train()
    assert trainer.run.encoder_caches == [None]
    assert "encoder cache off: the image processor augments images at random" in capsys.readouterr().err


def test_cache_options_are_checked() -> None:
    with pytest.raises(ValueError, match="encoder_cache_dtype"):
        TrainingConfig(output_dir="", encoder_cache_dtype="float64")
    with pytest.raises(ValueError, match="encoder_cache_memory_mb"):
        TrainingConfig(output_dir="", encoder_cache_memory_mb=-1)


def test_a_step_trains_the_batch_size_in_examples(tmp_path: Path, capsys) -> None:
    """5 captions per image, batch 8: 8 examples a step, groups split between steps."""
    trainer = make_trainer(tmp_path, images=8, captions=5, per_device_train_batch_size=8, max_steps=5, **LIT)
    steps = []
    original = trainer._step
    trainer._step = lambda micro, index: (
        steps.append(sum(len(batch["examples"]) for batch in micro)) or original(micro, index)
    )
    trainer.train()
    assert steps == [8] * 5
    assert "40 examples in 8 groups; 5 steps/epoch; a step trains 8 examples of 2.4 images" in capsys.readouterr().err


def test_example_batches_cut_groups_and_processes() -> None:
    groups = [list(range(start, start + 5)) for start in range(0, 40, 5)]
    one = example_batches(groups, 8, 1, 0, seed=1, epoch=0)
    assert [sum(stop - start for _, start, stop in batch) for batch in one] == [8] * 5
    members = [groups[group][i] for batch in one for group, start, stop in batch for i in range(start, stop)]
    assert sorted(members) == list(range(40))
    assert all(len({group for group, _, _ in batch}) == len(batch) for batch in one)  # one encoder row per image
    two = [example_batches(groups, 4, 2, rank, seed=1, epoch=0) for rank in (0, 1)]
    flat = [[(g, i) for g, start, stop in batch for i in range(start, stop)] for batch in one]
    assert [[(g, i) for g, start, stop in a + b for i in range(start, stop)] for a, b in zip(*two)] == flat
    singles = [[index] for index in range(11)]
    for ranks in (1, 2, 3):  # single-example groups: the packing of epoch_batches, so ungrouped runs are unchanged
        for rank in range(ranks):
            assert [
                [g for g, _, _ in batch] for batch in example_batches(singles, 2, ranks, rank, 3, 1)
            ] == epoch_batches(singles, 2, ranks, rank, 3, 1, shuffle=True, drop_last=True)


def _rank(rank: int, tmp: str, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        lit_trainer(Path(tmp), per_device_train_batch_size=4, save_strategy="no").train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_each_process_caches_what_it_reads(tmp_path: Path) -> None:
    mp.spawn(_rank, args=(str(tmp_path / "two"), _free_port()), nprocs=2, join=True)
    make_trainer(tmp_path / "one", max_steps=9, encoder_cache=False, **LIT, **ALIGNED).train()
    folders = sorted((tmp_path / "two" / "run" / "encoder-cache" / "train").glob("*/rank-*"))
    assert [folder.name for folder in folders] == ["rank-0", "rank-1"]
    stored = [[slot for slot, state in enumerate((folder / "filled.bin").read_bytes()) if state] for folder in folders]
    assert all(stored) and set(stored[0]) | set(stored[1]) == set(range(6))
    two, one = losses(tmp_path / "two" / "run"), losses(tmp_path / "one" / "run")
    assert _worst(two, one) <= 1e-5  # each process encodes one image a step where one process encodes two
