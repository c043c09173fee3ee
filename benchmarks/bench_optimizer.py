"""The update's share of a cached LiT step: the trainer's update (`scaled_step`: the scale and clip factor handed to
fused AdamW's kernel) vs the two before it, in one run.

Run:  python -m pytest benchmarks/bench_optimizer.py --benchmark-columns=median,rounds

The LiT step of `recipes/muge_caption.json` once the encoder is cached: CN-base shape at 256 px with random weights,
encoder and word embedding frozen (61.8 M trainable parameters in 236 tensors), batch 8 (2 images x 4 captions of
15 tokens; BENCH_OPT_BATCH changes it), fp32, 2 threads. Each round times the decoder's forward and backward, then
three updates on its gradients: now (`scaled_step`), the previous default (`scale_and_clip_`, a multiplication of
every gradient, then fused AdamW) and the one before (per-tensor scale, `clip_grad_norm_`, unfused AdamW); and one
copy of 247 MB (the trainable weights) for the machine's memory bandwidth. The medians count, so load from
neighbours lands on all. The bytes each update moves give its floor at that bandwidth.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.recipe.training import TrainingConfig
from ofa_core.trainer.freezing import apply_freezing
from ofa_core.trainer.optim import build_optimizer, scale_and_clip_, scaled_step

IMAGES, RESOLUTION, SOURCE, TARGET = 2, 256, 10, 15
SCALE, MAX_NORM = 1 / 120, 1.0
# Bytes per trainable fp32 parameter. Fused AdamW reads weight, gradient and both moments and writes all of them
# back (the gradient too when it divides it by grad_scale); the norm reads every gradient once more.
# The previous default multiplied each gradient first (a read and a write) and its kernel wrote no gradient back.
# The one before: mul_ (2), clip_grad_norm_ (1 + 2), and per-tensor AdamW's eight element-wise passes (~20).
BYTES = {"now": 4 * (8 + 1), "multiplied": 4 * (7 + 3), "before": 4 * (2 + 3 + 20)}


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def lit_step(batch: int) -> tuple[OFAForConditionalGeneration, Callable[[], None]]:
    """The LiT model with its frozen parts, and its forward + backward on cached encoder outputs."""
    model = OFAForConditionalGeneration(OFAConfig.from_preset("ofa-cn-base", patch_image_size=RESOLUTION))
    apply_freezing(model, TrainingConfig(output_dir="", freeze_encoder=True, freeze_word_embed=True))
    model.train()
    model.get_encoder().eval()
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

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        logits = model(decoder_input_ids=targets, encoder_outputs=encoded, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.roll(-1, 1).flatten(), reduction="sum")
        loss.backward()

    return model, forward_backward


def updates(model: torch.nn.Module) -> dict[str, Callable[[], None]]:
    """The three updates, each with its own optimizer over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = build_optimizer(model, TrainingConfig(output_dir="", learning_rate=1e-7))
    previous = build_optimizer(model, TrainingConfig(output_dir="", learning_rate=1e-7))
    unfused = build_optimizer(model, TrainingConfig(output_dir="", optim="adamw_torch", learning_rate=1e-7))

    def multiplied() -> None:
        scale_and_clip_(params, SCALE, MAX_NORM)
        previous.step()

    def before() -> None:
        for p in params:
            if p.grad is not None:  # as the trainer did; a few decoder tables take no gradient from captions
                p.grad.mul_(SCALE)
        torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
        unfused.step()

    return {"now": lambda: scaled_step(fused, params, SCALE, MAX_NORM), "multiplied": multiplied, "before": before}


def test_lit_update_share(benchmark, report):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    batch = int(os.environ.get("BENCH_OPT_BATCH", 8))
    model, forward_backward = lit_step(batch)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    work = updates(model)
    source, sink = torch.empty(count), torch.empty(count)
    work = {"step": forward_backward, **work, "copy": lambda: sink.copy_(source)}
    seconds: dict[str, list[float]] = {name: [] for name in work}

    def round_() -> None:
        for name, run in work.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)

    round_()  # warm-up: the optimizers allocate their moments
    for values in seconds.values():
        values.clear()
    benchmark.pedantic(round_, rounds=int(os.environ.get("BENCH_OPT_ROUNDS", 5)), iterations=1)
    ms = {name: 1000 * median(values) for name, values in seconds.items()}
    bandwidth = 2 * 4 * count / (ms["copy"] / 1000) / 1e9

    def share(name: str) -> str:
        return f"{ms[name]:.0f} ms ({100 * ms[name] / (ms['step'] + ms[name]):.1f}% of the step)"

    report(
        f"LiT update, CN-base shape ({count / 1e6:.1f} M trainable parameters), batch {batch}, fp32, CPU 2 threads: "
        f"forward+backward {ms['step']:.0f} ms; update now {share('now')}, "
        f"gradients multiplied first {share('multiplied')}, per-tensor {share('before')}"
    )
    floors = ", ".join(f"{name} {BYTES[name] * count / 1e9:.2f} GB" for name in BYTES)
    report(
        f"  memory: a 247 MB copy ran at {bandwidth:.1f} GB/s; bytes moved: {floors}; a 10% share needs an update of "
        f"<= {ms['step'] / 9:.0f} ms"
    )
    assert ms["now"] > 0 and ms["step"] > 0
