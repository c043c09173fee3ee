"""Captions from a trained demo checkpoint in fp32 and in bf16: how often the best beams agree, and images/s.

The recipe's own search (recipes/demo_caption.json `generation`) on its validation photos; bf16 is the whole
model cast to bfloat16. Run by benchmarks/gpu_check.sh:

    python benchmarks/gpu_generate.py CHECKPOINT [--device cuda] [--images 60] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from itertools import islice
from pathlib import Path

import torch
from PIL import Image
from transformers.utils import logging as hf_logging

from ofa_core.generation.settings import generation_config
from ofa_core.inference.loading import load_model
from ofa_core.model.search import special_token_ids
from ofa_core.recipe import load, resolve_tasks
from ofa_core.registry import load_plugins

RECIPE = Path(__file__).parents[1] / "recipes" / "demo_caption.json"


def prompts_and_images(checkpoint: Path, count: int) -> tuple[list[str], list[Image.Image], object]:
    """The recipe's prompt for the first `count` validation records, their images, and the recipe's search."""
    recipe = load(RECIPE, [f"model.checkpoint={checkpoint}"])
    (task,) = resolve_tasks(recipe, load_plugins().registry())
    records = []
    for record in task.reader.open(task.reader_options, "valid"):
        if task.task.preprocess is not None:
            record = task.task.preprocess(record, "valid", task.task_options)
        if record is not None:
            records.append(record)
        if len(records) == count:
            break
    images = [
        Image.open(io.BytesIO(r["image"]) if isinstance(r["image"], bytes) else r["image"]).convert("RGB")
        for r in records
    ]
    return [task.prompt.source.format(**record) for record in records], images, task.generation


def generate(
    model, processor, config, texts: list[str], images: list, batch_size: int, dtype: torch.dtype, device: torch.device
) -> tuple[list[str], float]:
    """Best beams for every prompt, and the seconds it took (after one warm-up batch)."""

    def batch(start: int) -> list[str]:
        inputs = processor(text=texts[start : start + batch_size], images=images[start : start + batch_size])
        inputs = {key: value.to(device) for key, value in inputs.items()}
        inputs["patch_images"] = inputs["patch_images"].to(dtype)
        with torch.no_grad():
            sequences = model.generate(**inputs, generation_config=config)
        return processor.batch_decode(sequences, skip_special_tokens=True)

    batch(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = [text for start in range(0, len(texts), batch_size) for text in batch(start)]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return [text.strip() for text in out], time.perf_counter() - started


def main() -> int:
    hf_logging.disable_progress_bar()  # the check's log is read as text
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a model directory or a run directory (its newest checkpoint)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    device = torch.device(args.device)
    texts, images, search = prompts_and_images(args.checkpoint, args.images)
    model, processor = load_model(args.checkpoint)
    model = model.to(device).eval()
    config = generation_config(search, **special_token_ids(model.config))
    results = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = model.to(dtype)
        results[name] = generate(model, processor, config, texts, images, args.batch_size, dtype, device)
        captions, seconds = results[name]
        print(
            f"generate {name}: {len(captions)} images in {seconds:.2f} s, {len(captions) / seconds:.1f} images/s "
            f"(beam {config.num_beams}, batch {args.batch_size}, {device})"
        )
    same = sum(a == b for a, b in zip(results["fp32"][0], results["bf16"][0]))
    print(
        f"generate bf16 vs fp32: best beams identical for {same} of {len(texts)} images "
        f"({100 * same / len(texts):.1f} %)"
    )
    for a, b in islice(((a, b) for a, b in zip(results["fp32"][0], results["bf16"][0]) if a != b), 3):
        print(f"  differs: fp32 {a!r} / bf16 {b!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
