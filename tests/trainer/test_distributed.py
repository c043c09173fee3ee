"""Two gloo processes train to the same weights as one process with the same global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from ofa_core.testing import tiny_model

from .test_train import make_trainer

def model():
    """float64, so the comparison measures the trainer and not float32 rounding that Adam's first
    steps (update ≈ lr·sign(g)) amplify for near-zero gradients."""
    return tiny_model(patch_image_size=32, scale=0.1).double()


OPTIONS = {"max_steps": 3, "save_strategy": "steps", "save_steps": 3, "freeze_encoder": True, "weight_decay": 0.01,
           "gradient_accumulation_steps": 2}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, tmp: str, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        make_trainer(Path(tmp), model=model(), images=6, captions=3,
                     per_device_train_batch_size=3, **OPTIONS).train()
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "two"), _free_port()), nprocs=2, join=True)
    make_trainer(tmp_path / "one", model=model(), images=6, captions=3,
                 per_device_train_batch_size=6, **OPTIONS).train()
    two = load_file(tmp_path / "two" / "run" / "checkpoint-3" / "model.safetensors")
    one = load_file(tmp_path / "one" / "run" / "checkpoint-3" / "model.safetensors")
    start = model().state_dict()
    assert not torch.equal(one["model.shared.weight"], start["model.shared.weight"])
    worst = max(float((one[name] - two[name]).abs().max()) for name in one)
    assert worst <= 1e-5, worst
    assert (tmp_path / "two" / "run" / "checkpoint-3" / "rng_state_1.pt").exists()
