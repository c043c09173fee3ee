"""Tiny generated captioning data for trainer tests: random images, captions over a 12-character vocabulary."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image

from ofa_core.data import RecordEncoder, encode_records
from ofa_core.model.image_processing import OFAImageProcessor
from ofa_core.model.processing import OFAProcessor
from ofa_core.model.tokenization import OFATokenizer
from ofa_core.plugin import PromptTemplate

CHARS = list("图片描述了什么红绿蓝猫狗")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "?", *CHARS]
TEMPLATE = PromptTemplate(name="caption.zh", lang="zh", source="图片描述了什么?", target="{caption}")


def make_processor(tmp_path: Path, image_size: int = 32) -> OFAProcessor:
    vocab = tmp_path / f"vocab-{os.getpid()}.txt"  # processes of one distributed test share tmp_path
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return OFAProcessor(OFAImageProcessor(patch_image_size=image_size), OFATokenizer.from_bert_vocab(vocab))


def png(seed: int, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def records(images: int, captions_per_image: int, seed: int = 0) -> list[dict]:
    """Each image's captions share a first character derived from the image, so the task is learnable."""
    rng = random.Random(seed)
    out = []
    for image in range(images):
        data = png(seed * 1000 + image)
        for caption in range(captions_per_image):
            text = CHARS[image % 4 + 7] + "".join(rng.choice(CHARS) for _ in range(3))
            out.append(
                {"id": f"{image}-{caption}", "image_id": image, "image": data, "caption": text, "references": [text]}
            )
    return out


def examples(processor: OFAProcessor, images: int, captions_per_image: int, seed: int = 0):
    return encode_records(
        records(images, captions_per_image, seed), RecordEncoder(processor.tokenizer, TEMPLATE), "train"
    )


KILLED_WHILE_SAVING = """
import sys, time
import torch
sys.path.insert(0, {tests!r})
from pathlib import Path
from ofa_core.trainer import checkpointing
from trainer.{module} import {function}
torch.set_num_threads(1)  # as the test process runs, so float sums agree bit for bit
original = checkpointing._fsync_dir
def slow(path):
    original(path)
    if path.name.startswith(".tmp-checkpoint-{step}-"):
        print("SAVING", flush=True)
        time.sleep(60)
checkpointing._fsync_dir = slow
{function}(Path({tmp!r}), **{options!r}).train()
"""


def kill_while_saving(factory: str, directory: Path, step: int, **options) -> None:
    """Train `factory(directory, **options)` ('module:function' of tests/trainer) in a subprocess and SIGKILL it
    while it writes checkpoint-`step`, after the files are written and before the rename."""
    import signal
    import subprocess
    import sys

    module, function = factory.split(":")
    script = KILLED_WHILE_SAVING.format(
        tests=str(Path(__file__).parents[1]),
        module=module,
        function=function,
        step=step,
        tmp=str(directory),
        options=options,
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout.readline().strip() == b"SAVING"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
