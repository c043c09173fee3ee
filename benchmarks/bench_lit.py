"""The main job's step: LiT on MUGE-format data, CN-base shape, first epoch (encoder runs) vs the next (encoder cache).

Run:  python -m pytest benchmarks/bench_lit.py --benchmark-columns=median,rounds

For 1 and 5 captions per image, in fp32 and bf16 autocast: a `Trainer` (random CN-base weights at 256 px, encoder
and word embedding frozen, batch 8, 2 threads) trains two epochs of generated MUGE data read by the MUGE reader;
samples/s is counted per epoch over its steps (loading, forward, backward, AdamW), and the second epoch's phase
shares are reported (the optimizer's among them). BENCH_LIT_IMAGES sets the images per epoch (default 16 at
1 caption, 8 at 5 captions).

With OFA_CHINESE_BENCH set to a shell command, the same data also trains OFA-Chinese's `train.py` through it, in
the same run: the command gets OFA_BENCH_DATA (the MUGE folder: IC_train.jsonl, IC_train.tsv), OFA_BENCH_PORT
(the port directory, from OFA_CHINESE_PORT_DIR), OFA_BENCH_CAPTIONS, OFA_BENCH_PRECISION (fp32 or bf16),
OFA_BENCH_BATCH and OFA_BENCH_EPOCHS in its environment, and prints 'N samples/s' (the last such figure counts).
"""

from __future__ import annotations

import base64
import io
import os
import random
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from PIL import Image

from ofa_core.data import RecordEncoder, encode_records
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.plugin import PromptTemplate
from ofa_core.recipe.training import TrainingConfig
from ofa_core.testing import tiny_processor
from ofa_core.trainer.loop import Trainer
from ofa_tasks.caption.readers import MugeOptions, read_muge

RESOLUTION, BATCH, EPOCHS = 256, 8, 2
TEMPLATE = PromptTemplate(name="caption.zh", lang="zh", source="图片描述了什么?", target="{caption}")
CHARS = "这段文字描述的是哪个区域图片中有什么一只猫狗红色的车在上下左右大小人"


def write_muge(folder: Path, images: int, captions: int) -> Path:
    """IC_train.jsonl + IC_train.tsv as MUGE ships them: 32-hex-digit image ids, random 256 px JPEGs,
    15-character captions."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    with open(folder / "IC_train.jsonl", "wb") as lines, open(folder / "IC_train.tsv", "w") as rows:
        for image in range(images):
            pixels = np.random.default_rng(image).integers(0, 256, (RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG")
            rows.write(f"{image:032x}\t{base64.b64encode(buffer.getvalue()).decode()}\n")
            texts = ["".join(rng.choice(CHARS) for _ in range(15)) for _ in range(captions)]
            lines.write(orjson.dumps({"image_id": f"{image:032x}", "text": texts}) + b"\n")
    return folder


def ours(folder: Path, precision: str, run: Path) -> dict:
    """Two epochs of our LiT step; samples/s per epoch and the later epoch's seconds per phase."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    processor = tiny_processor(patch_image_size=RESOLUTION)
    records = list(read_muge(MugeOptions(folder=str(folder)), "train"))
    examples = encode_records(records, RecordEncoder(processor.tokenizer, TEMPLATE, 80, 32), "train")
    model = OFAForConditionalGeneration(OFAConfig.from_preset("ofa-cn-base", patch_image_size=RESOLUTION))
    steps_per_epoch = len(examples) // BATCH
    config = TrainingConfig(
        output_dir=str(run),
        max_steps=EPOCHS * steps_per_epoch,
        per_device_train_batch_size=BATCH,
        learning_rate=5e-5,
        lr_scheduler_type="cosine",
        warmup_steps=1,
        logging_steps=1000,
        save_strategy="no",
        report_to="none",
        mixed_precision="no" if precision == "fp32" else "bf16",
        freeze_encoder=True,
        freeze_word_embed=True,
    )
    trainer = Trainer(model, config, processor, train_examples=examples)
    marks: list[float] = []
    phases: list[dict[str, float]] = []
    step = trainer._train_step

    def timed(index: int) -> None:
        step(index)
        marks.append(time.perf_counter())
        if len(marks) % steps_per_epoch == 0:
            phases.append(dict(trainer.run.times.seconds))

    trainer._train_step = timed
    started = time.perf_counter()
    trainer.train()
    bounds = [started] + marks[steps_per_epoch - 1 :: steps_per_epoch]
    speeds = [steps_per_epoch * BATCH / (stop - start) for start, stop in zip(bounds, bounds[1:])]
    later = {name: phases[-1][name] - phases[-2][name] for name in phases[-1]}
    return {"samples_per_s": speeds, "later_phases": later, "steps_per_epoch": steps_per_epoch}


def seed_command(command: str, folder: Path, captions: int, precision: str) -> float:
    """OFA-Chinese's samples/s as the command prints it."""
    env = {
        **os.environ,
        "OFA_BENCH_DATA": str(folder),
        "OFA_BENCH_PORT": os.environ.get("OFA_CHINESE_PORT_DIR", ""),
        "OFA_BENCH_CAPTIONS": str(captions),
        "OFA_BENCH_PRECISION": precision,
        "OFA_BENCH_BATCH": str(BATCH),
        "OFA_BENCH_EPOCHS": str(EPOCHS),
    }
    result = subprocess.run(command, shell=True, env=env, capture_output=True, text=True)
    found = re.findall(r"([0-9.]+)\s*samples/s", result.stdout)
    if result.returncode or not found:
        pytest.fail(f"OFA_CHINESE_BENCH exited {result.returncode} without 'N samples/s': {result.stderr[-2000:]}")
    return float(found[-1])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("captions", [1, 5])
def test_lit_step(benchmark, report, tmp_path, captions, precision):
    images = int(os.environ.get("BENCH_LIT_IMAGES", 16 if captions == 1 else 8))
    folder = write_muge(tmp_path / "muge", images, captions)
    figures = benchmark.pedantic(ours, args=(folder, precision, tmp_path / "run"), rounds=1, iterations=1)
    first, later = figures["samples_per_s"][0], figures["samples_per_s"][-1]
    phases = figures["later_phases"]
    total = sum(phases.values()) or 1.0
    shares = ", ".join(f"{name} {100 * value / total:.0f}%" for name, value in phases.items() if value)
    line = (
        f"LiT CN-base @{RESOLUTION}px, {captions} caption(s)/image, batch {BATCH}, {precision}, 2 threads, "
        f"{figures['steps_per_epoch']} steps/epoch: epoch 1 {first:.2f} samples/s, epoch 2 (cached) {later:.2f} "
        f"samples/s; epoch 2 phases: {shares}"
    )
    command = os.environ.get("OFA_CHINESE_BENCH")
    if command:
        seed = seed_command(command, folder, captions, precision)
        line += f"; OFA-Chinese {seed:.2f} samples/s: ours {first / seed:.2f}x (epoch 1), {later / seed:.2f}x (epoch 2)"
    report(line)
    assert later > 0
