"""Beam-5 caption generation speed per precision mode on CPU (2 threads), CN-base shape, random weights.

Run:  python -m pytest benchmarks/bench_generate.py --benchmark-columns=median,rounds

Per mode and batch it reports ms per image, the share spent in the encoder, and the ratio to fp32 (exact mode)
measured in the same run. Speed only: the weights are random, with nearly flat output distributions, so whether a
mode's answers match fp32's says nothing about a trained model's; benchmarks/bench_precision.py measures that on the
trained demo model. bf16 runs where the CPU has native bf16 (and on a GPU), fp16 on a GPU only; elsewhere they are
skipped with the reason. `test_int8_break_even` measures fp32 and int8 on the widths either side of
`ofa_core.model.precision.INT8_MIN_D_MODEL`, below which `--precision int8` leaves a model in fp32.

With `OFA_FAIRSEQ_BENCH` set to a command that runs the official fairseq generator on a checkpoint (it receives the
path of an official-layout `.pt` written from the same weights and prints JSON `{"1": ms_per_image, "8":
ms_per_image}`), the speed-up of every mode over fairseq measured in the same run is reported too.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import time

import pytest
import torch

from ofa_core.model import precision
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.errors import OFAError
from ofa_core.model.modeling import OFAForConditionalGeneration

PROMPT = [0, 1749, 4279, 2993, 6839, 753, 788, 724, 1083, 2163, 140, 2]  # "图片描述了什么内容?"
RESOLUTION = 256
NEW_TOKENS = 16
SETTINGS = dict(num_beams=5, max_new_tokens=NEW_TOKENS + 1, min_new_tokens=NEW_TOKENS, no_repeat_ngram_size=3)
MODES = ("fp32", "int8", "bf16", "fp16")
RESULTS: dict[tuple[str, int], float] = {}


def device_for(mode: str) -> str:
    """fp16 is measured on a GPU; the other modes on the CPU, where the comparison with fp32 is the point."""
    return "cuda" if mode == "fp16" else "cpu"


@pytest.fixture(scope="module")
def exact() -> OFAForConditionalGeneration:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    return OFAForConditionalGeneration(OFAConfig.from_preset("ofa-cn-base")).eval()


@pytest.fixture(scope="module")
def models(exact) -> dict:
    """Each mode this machine runs, through `precision.apply` as `--precision` does; a refused mode maps to why."""
    found: dict = {}
    for mode in MODES:
        try:
            found[mode] = precision.apply(copy.deepcopy(exact), mode, device_for(mode))[0]
        except OFAError as error:
            found[mode] = str(error)
    return found


def inputs(batch: int, resolution: int = RESOLUTION, device: str = "cpu") -> dict:
    generator = torch.Generator().manual_seed(batch)
    return {
        "input_ids": torch.tensor([PROMPT] * batch, device=device),
        "patch_images": torch.randn(batch, 3, resolution, resolution, generator=generator).to(device),
    }


def encoder_seconds(model, batch_inputs: dict) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        model.get_encoder()(batch_inputs["input_ids"], patch_images=batch_inputs["patch_images"])
        return time.perf_counter() - start


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("mode", MODES)
def test_generate_speed(benchmark, report, models, mode, batch):
    model = models[mode]
    if isinstance(model, str):
        pytest.skip(model)
    batch_inputs = inputs(batch, device=device_for(mode))
    model.generate(**batch_inputs, **SETTINGS)  # warm-up
    output = benchmark.pedantic(lambda: model.generate(**batch_inputs, **SETTINGS), rounds=3, iterations=1)
    seconds = benchmark.stats.stats.median
    RESULTS[(mode, batch)] = seconds / batch * 1000
    share = encoder_seconds(model, batch_inputs) / seconds
    line = f"{mode:4s} batch {batch}: {seconds / batch * 1000:7.1f} ms/image, encoder {share:.0%} of the time"
    if mode != "fp32" and ("fp32", batch) in RESULTS:
        line += f"; {RESULTS[('fp32', batch)] / RESULTS[(mode, batch)]:.2f}x fp32"
    assert output.shape == (batch, NEW_TOKENS + 2)
    benchmark.extra_info["summary"] = line
    report(line)


@pytest.mark.parametrize("preset", ["ofa-demo", "ofa-tiny"])
def test_int8_break_even(report, preset):
    """fp32 and int8 on one model, rounds interleaved so that both see the same machine load; median of 5."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = OFAConfig.from_preset(preset)
    fp32 = OFAForConditionalGeneration(config).eval()
    int8 = precision.apply(copy.deepcopy(fp32), "int8", "cpu")[0] if precision.int8_pays(config) else None
    if int8 is None:
        from ofa_core.model.quantize import quantize_for_cpu

        int8 = quantize_for_cpu(fp32, encoder=True)  # what --precision int8 would run, were the model not left in fp32
    resolution = min(RESOLUTION, config.patch_image_size * 4)
    for batch in (1, 8):
        batch_inputs = inputs(batch, resolution)
        seconds: dict[str, list[float]] = {"fp32": [], "int8": []}
        with torch.no_grad():
            for model in (fp32, int8):
                model.generate(**batch_inputs, **SETTINGS)
            for _ in range(5):
                for name, model in (("fp32", fp32), ("int8", int8)):
                    start = time.perf_counter()
                    out = model.generate(**batch_inputs, **SETTINGS)
                    seconds[name].append(time.perf_counter() - start)
        assert out.shape == (batch, NEW_TOKENS + 2)
        median = {name: sorted(values)[2] / batch * 1000 for name, values in seconds.items()}
        left = "applied" if precision.int8_pays(config) else "left in fp32"
        report(f"{preset} (width {config.d_model}, {resolution} px) batch {batch}: fp32 {median['fp32']:.1f}, int8 "
               f"{median['int8']:.1f} ms/image: int8 {median['fp32'] / median['int8']:.2f}x fp32 (--precision int8: {left})")


def test_speedup_over_fairseq(report, exact, tmp_path):
    command = os.environ.get("OFA_FAIRSEQ_BENCH")
    if not command:
        pytest.skip("set OFA_FAIRSEQ_BENCH to compare with the official generator in the same run")
    from ofa_core.convert.to_fairseq import export_fairseq

    exact.save_pretrained(tmp_path / "cnbase")
    checkpoint = tmp_path / "cnbase.pt"
    export_fairseq(tmp_path / "cnbase", checkpoint)
    result = subprocess.run([*shlex.split(command), str(checkpoint)], capture_output=True, text=True, check=True)
    fairseq = {int(batch): ms for batch, ms in json.loads(result.stdout.strip().splitlines()[-1]).items()}
    assert RESULTS, "run the speed benchmarks in the same session"
    for batch, ms in sorted(fairseq.items()):
        report(f"fairseq batch {batch}: {ms:7.1f} ms/image")
    for (mode, batch), ms in sorted(RESULTS.items()):
        report(f"{mode:4s} batch {batch}: {fairseq[batch] / ms:4.2f}x the official fairseq generator")
