"""The update's share of a cached LiT step: the trainer's update (scale and clip in one pass, fused AdamW) vs the
previous one (per-tensor scale, `clip_grad_norm_`, unfused AdamW), in one run.

Run:  python -m pytest benchmarks/bench_optimizer.py --benchmark-columns=median,rounds

The LiT step of `recipes/muge_caption.json` once the encoder is cached: CN-base shape at 256 px with random weights,
encoder and word embedding frozen (61.8 M trainable parameters in 236 tensors), batch 8 (2 images x 4 captions of
15 tokens; BENCH_OPT_BATCH changes it), fp32, 2 threads. Each round times the decoder's forward and backward, then
both updates on its gradients, the same update on the same number of parameters held in two flat tensors (one per
decay group: what flat parameter buffers would cost), and one copy of 247 MB (the trainable weights) for the machine's
memory bandwidth; the medians count, so load from neighbours lands on all. The figures give the bytes the update
moves: its floor at that bandwidth. On a CPU each tensor costs one or more parallel regions, whose threads must meet;
on a machine shared with other jobs that wait, not the bytes, sets the time, and the flat figure shows how much.
"""

from __future__ import annotations

import os
import time

import torch

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer.freezing import apply_freezing
from ofa_core.trainer.optim import build_optimizer, scale_and_clip_

IMAGES, RESOLUTION, SOURCE, TARGET = 2, 256, 10, 15
# Bytes per trainable fp32 parameter. Fused AdamW reads weight, gradient and both moments and writes all but the
# gradient; scale_and_clip_ reads the gradient for the norm, then reads and writes it once.
# The previous update: mul_ (2), clip_grad_norm_ (1 + 2), and per-tensor AdamW's eight element-wise passes
# (lerp, mul, addcmul, sqrt, div, add, addcdiv on the moments and weight, decay on the weight: ~20 accesses).
BYTES_NOW = 4 * (7 + 3)
BYTES_BEFORE = 4 * (2 + 3 + 20)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def test_lit_update_share(benchmark, report):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    batch = int(os.environ.get("BENCH_OPT_BATCH", 8))
    model = OFAForConditionalGeneration(OFAConfig.from_preset("ofa-cn-base", patch_image_size=RESOLUTION))
    config = TrainingConfig(output_dir="", freeze_encoder=True, freeze_word_embed=True, learning_rate=1e-7)
    apply_freezing(model, config)
    model.train()
    model.get_encoder().eval()
    params = [p for p in model.parameters() if p.requires_grad]
    count = sum(p.numel() for p in params)
    with torch.no_grad():
        encoded = model.get_encoder()(
            input_ids=torch.randint(5, 1000, (IMAGES, SOURCE)),
            patch_images=torch.randn(IMAGES, 3, RESOLUTION, RESOLUTION),
        )
    index = torch.arange(batch) % IMAGES
    encoded = type(encoded)(
        last_hidden_state=encoded.last_hidden_state[index],
        padding_mask=encoded.padding_mask[index],
        position_embeddings=encoded.position_embeddings[index],
    )
    targets = torch.randint(5, 1000, (batch, TARGET))
    now = build_optimizer(model, config)
    before = build_optimizer(model, TrainingConfig(output_dir="", optim="adamw_torch", learning_rate=1e-7))
    groups = [sum(p.numel() for p in group["params"]) for group in now.param_groups]
    flat = [torch.nn.Parameter(torch.zeros(size)) for size in groups if size]
    for tensor in flat:
        tensor.grad = torch.randn(tensor.shape)
    flat_optimizer = torch.optim.AdamW(flat, lr=1e-7, fused=True)
    seconds: dict[str, list[float]] = {"step": [], "now": [], "before": [], "flat": [], "copy": []}
    source, sink = params[0].detach().new_empty(count), params[0].detach().new_empty(count)

    def timed(name: str, work) -> None:
        start = time.perf_counter()
        work()
        seconds[name].append(time.perf_counter() - start)

    def forward_backward() -> None:
        now.zero_grad(set_to_none=True)
        logits = model(decoder_input_ids=targets, encoder_outputs=encoded, use_cache=False).logits
        torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), targets.roll(-1, 1).flatten(), reduction="sum"
        ).backward()

    def update_before() -> None:
        for p in params:
            if p.grad is not None:  # as the trainer did; a few decoder tables take no gradient from captions
                p.grad.mul_(1 / 120)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        before.step()

    def update_now() -> None:
        scale_and_clip_(params, 1 / 120, 1.0)
        now.step()

    def update_flat() -> None:
        scale_and_clip_(flat, 1 / 120, 1.0)
        flat_optimizer.step()

    def round_() -> None:
        timed("step", forward_backward)
        timed("before", update_before)
        timed("now", update_now)
        timed("flat", update_flat)
        timed("copy", lambda: sink.copy_(source))

    round_()  # warm-up: both optimizers allocate their moments
    for values in seconds.values():
        values.clear()
    benchmark.pedantic(round_, rounds=int(os.environ.get("BENCH_OPT_ROUNDS", 5)), iterations=1)
    step, now_s, before_s, flat_s, copy_s = (
        median(seconds[name]) for name in ("step", "now", "before", "flat", "copy")
    )
    bandwidth = 2 * 4 * count / copy_s / 1e9
    needed = BYTES_NOW * count / 1e9
    report(
        f"LiT update, CN-base shape ({count / 1e6:.1f} M trainable parameters, {len(params)} tensors), batch {batch}, "
        f"fp32, CPU 2 threads: forward+backward {step * 1000:.0f} ms; update now {now_s * 1000:.0f} ms "
        f"({100 * now_s / (step + now_s):.0f}% of the step), before {before_s * 1000:.0f} ms "
        f"({100 * before_s / (step + before_s):.0f}%), {before_s / now_s:.1f}x; "
        f"in two flat tensors {flat_s * 1000:.0f} ms "
        f"({100 * flat_s / (step + flat_s):.0f}%)"
    )
    report(
        f"  memory: the update moves {needed:.2f} GB (before: {BYTES_BEFORE * count / 1e9:.2f} GB); a 247 MB copy ran "
        f"at {bandwidth:.1f} GB/s, so the update needs >= {needed / bandwidth * 1000:.0f} ms here; a 10% share needs "
        f"an update of <= {step / 9 * 1000:.0f} ms, i.e. >= {needed / (step / 9):.1f} GB/s effective"
    )
    assert now_s > 0 and step > 0
