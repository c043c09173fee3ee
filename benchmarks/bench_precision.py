"""What each precision costs in answers, on the trained demo caption model and its 60 validation photos.

Run:  python -m pytest benchmarks/bench_precision.py

Agreement with fp32 means something only where a model's output distributions are decisive, as a trained model's
are; random weights (benchmarks/bench_generate.py, speed only) have nearly flat ones, where any rounding flips the
ranking. The demo model (`ofa-demo` shape, width 128) is trained by `recipes/demo_caption.json` unless its run exists
under runs/demo_caption. For each mode: best answers identical to fp32's, identical tokens, and the CIDEr-D of both,
decoded with the recipe's generation settings. The int8 rows quantize the demo model although `--precision int8`
leaves a model this narrow in fp32 (int8 is slower there): they measure what quantization does to the answers. bf16
runs where the CPU has native bf16; fp16 needs a GPU.
"""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import torch
from bench_serve import _demo_model

from ofa_core import OFAError
from ofa_core.inference.agreement import compare
from ofa_core.inference.loading import list_checkpoints, load_model
from ofa_core.inference.task_choice import choose_task
from ofa_core.model import precision
from ofa_core.model.quantize import quantize_for_cpu
from ofa_core.registry import load_plugins

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "demo_caption.json"
RUN = ROOT / "runs" / "demo_caption"


@pytest.fixture(scope="module")
def demo() -> tuple[Path, list[dict], list[list[str]]]:
    """(trained run directory, validation records, their reference captions)."""
    folder = _demo_model() / "muge"
    if not list_checkpoints(RUN):
        subprocess.run(
            [sys.executable, "-m", "ofa_core", "run", str(RECIPE)], cwd=ROOT, check=True, capture_output=True
        )
    references = {
        row["image_id"]: row["text"] for row in map(orjson.loads, (folder / "IC_valid.jsonl").read_bytes().splitlines())
    }
    records = []
    for line in (folder / "IC_valid.tsv").read_text(encoding="utf-8").splitlines():
        key, image = line.split("\t")[:2]
        records.append({"id": key, "image": base64.b64decode(image)})
    return RUN, records, [references[record["id"]] for record in records]


def modes(model) -> dict:
    """Every mode this machine runs, by report name; the int8 variants are the ones compared to choose
    `--precision int8`."""
    found = {
        "fp32": model,
        "int8 (--precision int8: per-channel, encoder and decoder layers)": quantize_for_cpu(model, encoder=True),
        "int8 per-tensor, encoder and decoder layers": quantize_for_cpu(model, encoder=True, per_channel=False),
        "int8 per-channel, last decoder layer fp32": quantize_for_cpu(model, encoder=True, keep_last_layer=True),
        "int8 per-tensor, decoder only (the former fast mode)": quantize_for_cpu(model, per_channel=False),
    }
    for name, device in (("bf16", "cpu"), ("fp16", "cuda")):
        try:
            found[name] = precision.apply(copy.deepcopy(model), name, device)[0]
        except OFAError as error:
            print(f"{name}: not measured: {error}")
    return found


def test_agreement_with_fp32_on_the_trained_demo_model(report, demo):
    torch.set_num_threads(2)
    run, records, references = demo
    model, processor = load_model(run)
    registry = load_plugins().registry()
    task, prompt, options = choose_task(registry, "caption", "zh", {}, caller="the benchmark")
    metric = registry.namespace("metric").get("caption")

    def cider(predictions: list[str], refs: list[list[str]]) -> float:
        scores = metric.build(metric.options(tokenize="zh"))
        scores.update(predictions, refs)
        return scores.compute()["cider"]

    generation = orjson.loads(RECIPE.read_bytes())["generation"]
    reports = compare(modes(model.eval()), processor, task, prompt, options, generation, records, references, cider)
    exact = reports[0]
    assert exact.images == len(records) and all(r.images == exact.images for r in reports)
    report(f"demo model ({run.name}, {exact.images} validation photos, {generation}): fp32 CIDEr-D {exact.score:.2f}")
    for mode in reports[1:]:
        report(mode.line(exact))
