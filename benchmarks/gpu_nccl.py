"""NCCL under torchrun: join the process group as the trainer does with several GPUs, all-reduce, time it.

A one-GPU job runs the trainer as a single process (no process group), so this is where benchmarks/gpu_check.sh
sees NCCL itself work:

    torchrun --nproc-per-node 1 benchmarks/gpu_nccl.py
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.distributed as dist


def main() -> int:
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl")
    rank, size = dist.get_rank(), dist.get_world_size()
    tensor = torch.full((64 * 1024 * 1024,), float(rank + 1), device="cuda")  # 256 MB of fp32
    dist.all_reduce(tensor)
    torch.cuda.synchronize()
    expected = size * (size + 1) / 2
    ok = bool(torch.all(tensor == expected))
    started = time.perf_counter()
    for _ in range(10):
        dist.all_reduce(tensor)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / 10
    dist.barrier()
    if rank == 0:
        print(
            f"nccl: {size} process(es), all-reduce of 256 MB {'correct' if ok else 'WRONG'}, "
            f"{seconds * 1000:.2f} ms each ({0.25 / seconds:.0f} GB/s algorithm bandwidth)"
        )
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
