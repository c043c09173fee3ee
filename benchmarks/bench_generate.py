"""Beam-5 caption generation speed on CPU (2 threads), CN-base shape, random weights.

Run:  python -m pytest benchmarks/bench_generate.py --benchmark-columns=median,rounds

Per mode and batch it reports ms per image, the share spent in the encoder, and for
fast mode (int8 decoder) the agreement with exact mode.  With `OFA_FAIRSEQ_BENCH` set to
a command that runs the official fairseq generator on a checkpoint (it receives the
path of an official-layout `.pt` written from the same weights and prints JSON
`{"1": ms_per_image, "8": ms_per_image}`), the speed-up over fairseq measured in the same
run is reported too.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time

import pytest
import torch

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.quantize import quantize_for_cpu
from ofa_core.model.modeling import OFAForConditionalGeneration

PROMPT = [0, 1749, 4279, 2993, 6839, 753, 788, 724, 1083, 2163, 140, 2]  # "图片描述了什么内容?"
RESOLUTION = 256
NEW_TOKENS = 16
SETTINGS = dict(num_beams=5, max_new_tokens=NEW_TOKENS + 1, min_new_tokens=NEW_TOKENS, no_repeat_ngram_size=3)
RESULTS: dict[tuple[str, int], float] = {}


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    exact = OFAForConditionalGeneration(OFAConfig.from_preset("ofa-cn-base")).eval()
    return {"exact": exact, "fast": quantize_for_cpu(exact)}


def inputs(batch: int) -> dict:
    generator = torch.Generator().manual_seed(batch)
    return {
        "input_ids": torch.tensor([PROMPT] * batch),
        "patch_images": torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=generator),
    }


def encoder_seconds(model, batch_inputs: dict) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        model.get_encoder()(batch_inputs["input_ids"], patch_images=batch_inputs["patch_images"])
        return time.perf_counter() - start


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_generate_speed(benchmark, report, models, mode, batch):
    model = models[mode]
    batch_inputs = inputs(batch)
    model.generate(**batch_inputs, **SETTINGS)  # warm-up
    output = benchmark.pedantic(lambda: model.generate(**batch_inputs, **SETTINGS), rounds=3, iterations=1)
    seconds = benchmark.stats.stats.median
    RESULTS[(mode, batch)] = seconds / batch * 1000
    share = encoder_seconds(model, batch_inputs) / seconds
    line = f"{mode:5s} batch {batch}: {seconds / batch * 1000:7.1f} ms/image, encoder {share:.0%} of the time"
    assert output.shape == (batch, NEW_TOKENS + 2)
    if mode == "fast":
        exact = models["exact"].generate(**batch_inputs, **SETTINGS)
        same_best = float((exact == output).all(dim=1).float().mean())
        same_tokens = float((exact == output).float().mean())
        line += f"; vs exact: identical best beams {same_best:.0%}, identical tokens {same_tokens:.0%}"
    benchmark.extra_info["summary"] = line
    report(line)


def test_speedup_over_fairseq(report, models, tmp_path):
    command = os.environ.get("OFA_FAIRSEQ_BENCH")
    if not command:
        pytest.skip("set OFA_FAIRSEQ_BENCH to compare with the official generator in the same run")
    from ofa_core.convert.to_fairseq import export_fairseq

    models["exact"].save_pretrained(tmp_path / "cnbase")
    checkpoint = tmp_path / "cnbase.pt"
    export_fairseq(tmp_path / "cnbase", checkpoint)
    result = subprocess.run([*shlex.split(command), str(checkpoint)], capture_output=True, text=True, check=True)
    fairseq = {int(batch): ms for batch, ms in json.loads(result.stdout.strip().splitlines()[-1]).items()}
    assert RESULTS, "run the speed benchmarks in the same session"
    for batch, ms in sorted(fairseq.items()):
        report(f"fairseq batch {batch}: {ms:7.1f} ms/image")
    for (mode, batch), ms in sorted(RESULTS.items()):
        report(f"{mode:5s} batch {batch}: {fairseq[batch] / ms:4.2f}x the official fairseq generator")
