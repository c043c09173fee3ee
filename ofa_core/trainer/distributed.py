"""torchrun awareness: process group set-up, gradient and metric reductions.

Gradients are all-reduced by hand once per optimizer step instead of through the DDP wrapper:
the loss must be divided by the token count of the whole step on every process (known only after
the last micro-batch), frozen and image-generation-only parameters get no gradient (DDP would need
`find_unused_parameters`), and a process whose batch lost all its images can still join the
reduction. One coalesced all-reduce per step costs little next to OFA's forward pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import attrs
import torch
import torch.distributed as dist


@attrs.frozen
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world() -> World:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA); single process
    otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def device_for(world: World) -> torch.device:
    return torch.device("cuda", world.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def all_reduce_gradients(parameters: Iterable[torch.nn.Parameter], world: World) -> None:
    """Sum the gradients of every process in one flat buffer.

    A parameter no process used (e.g. the decoder's image-code tables) keeps `grad=None`, so
    AdamW skips it exactly as in a single process; one used elsewhere counts as zero here.
    """
    if not world.distributed:
        return
    params = [p for p in parameters if p.requires_grad]
    used = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=params[0].device)
    dist.all_reduce(used)
    params = [p for p, count in zip(params, used.tolist()) if count]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
        offset += p.numel()


def gather_objects(value, world: World) -> list:
    """Every process's `value` (picklable), in rank order."""
    if not world.distributed:
        return [value]
    out = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def leave_world() -> None:
    """After a command's work: wait for every process, then leave the process group. Processes that simply exit
    while a peer still uses gloo can abort that peer ('terminate called without an active exception')."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
