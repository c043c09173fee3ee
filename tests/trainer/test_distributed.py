"""Two gloo processes (replicated or FSDP-sharded) train to the same weights as one process with the same global
batch."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import orjson
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from ofa_core.model.generation_config import as_generation_config
from ofa_core.model.search import SearchSettings, special_token_ids
from ofa_core.testing import tiny_model

from .test_train import make_trainer


def model():
    """float64, so the comparison measures the trainer and not float32 rounding that Adam's first
    steps (update ≈ lr·sign(g)) amplify for near-zero gradients."""
    return tiny_model(patch_image_size=32, scale=0.1).double()


OPTIONS = {
    "max_steps": 3,
    "save_strategy": "steps",
    "save_steps": 2,
    "freeze_encoder": True,
    "weight_decay": 0.01,
    "gradient_accumulation_steps": 2,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, tmp: str, port: int, fsdp: bool, resume: str | None) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        eval_options = {"eval_strategy": "steps", "eval_steps": 3} if fsdp else {}  # generation from gathered weights
        trainer = make_trainer(
            Path(tmp),
            model=model(),
            images=6,
            captions=3,
            per_device_train_batch_size=3,
            fsdp=fsdp,
            resume_from_checkpoint=resume,
            **eval_options,
            **OPTIONS,
        )
        trainer.tasks[0].generation_config = as_generation_config(
            SearchSettings(beam=2, max_len_b=3, min_len=1), **special_token_ids(trainer.model.config)
        )
        trainer.train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.parametrize("fsdp", [False, True], ids=["replicated", "fsdp"])
def test_two_gloo_processes_match_one_process(tmp_path: Path, fsdp: bool) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "two"), _free_port(), fsdp, None), nprocs=2, join=True)
    if fsdp:  # resume a sharded run from its step-2 checkpoint: the gathered state scatters back
        shutil.rmtree(tmp_path / "two" / "run" / "checkpoint-3")
        mp.spawn(_worker, args=(str(tmp_path / "two"), _free_port(), fsdp, "auto"), nprocs=2, join=True)
    make_trainer(
        tmp_path / "one", model=model(), images=6, captions=3, per_device_train_batch_size=6, **OPTIONS
    ).train()
    two = load_file(tmp_path / "two" / "run" / "checkpoint-3" / "model.safetensors")
    one = load_file(tmp_path / "one" / "run" / "checkpoint-3" / "model.safetensors")
    start = model().state_dict()
    assert not torch.equal(one["model.shared.weight"], start["model.shared.weight"])
    worst = max(float((one[name] - two[name]).abs().max()) for name in one)
    assert worst <= 1e-5, worst
    assert (tmp_path / "two" / "run" / "checkpoint-3" / "rng_state_1.pt").exists()
    if fsdp:
        rows = [orjson.loads(line) for line in (tmp_path / "two" / "run" / "log.jsonl").read_bytes().splitlines()]
        assert any(row["split"] == "eval" for row in rows)
