"""One AdamW update with `training.optim` adamw_torch (torch's default on this device) and adamw_torch_fused.

Run:  python -m pytest benchmarks/bench_optimizer.py --benchmark-columns=median,rounds

The model is the demo's shape (`ofa-demo` preset, 6.1 M parameters in 347 tensors, random weights) with
random gradients, on the CPU with 2 threads. The update is bound by memory traffic: the default walks
the weights, gradients and both moments several times, the fused kernel once. Both kinds alternate
within each round and the median of each counts, so load from neighbours lands on both.
"""

from __future__ import annotations

import time

import torch

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer.optim import build_optimizer

KINDS = ("adamw_torch", "adamw_torch_fused")


def test_fused_adamw_step(benchmark, report):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = OFAForConditionalGeneration(OFAConfig.from_preset("ofa-demo", code_dict_size=16, vocab_size=1248))
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter) * 1e-3
    optimizers = {
        kind: build_optimizer(model, TrainingConfig(output_dir="", optim=kind, learning_rate=1e-7)) for kind in KINDS
    }
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}

    def both_kinds() -> None:
        for kind, optimizer in optimizers.items():
            start = time.perf_counter()
            for _ in range(10):
                optimizer.step()
            seconds[kind].append((time.perf_counter() - start) / 10)

    both_kinds()  # warm-up: the moments are allocated on the first step
    benchmark.pedantic(both_kinds, rounds=7, iterations=1)
    median = {kind: sorted(times[1:])[len(times[1:]) // 2] * 1000 for kind, times in seconds.items()}
    report(
        f"AdamW step, ofa-demo shape (6.1 M parameters), CPU 2 threads: adamw_torch {median['adamw_torch']:.1f} ms, "
        f"adamw_torch_fused {median['adamw_torch_fused']:.1f} ms "
        f"({median['adamw_torch'] / median['adamw_torch_fused']:.1f}x)"
    )
