"""Beam-5 caption generation speed per precision mode on CPU (2 threads), CN-base shape, random weights.

Run:  python -m pytest benchmarks/bench_generate.py --benchmark-columns=median,rounds

Per mode and batch it reports ms per image, the share spent in the encoder, and the ratio to fp32 (exact mode)
measured in the same run. Speed only: the weights are random, with nearly flat output distributions, so whether a
mode's answers match fp32's says nothing about a trained model's; benchmarks/bench_precision.py measures that on the
trained demo model. bf16 runs where the CPU has native bf16 (and on a GPU), fp16 on a GPU only; elsewhere they are
skipped with the reason. `test_int8_on_the_trained_demo_model` and `test_int8_at_tiny_width` measure fp32 and int8
on either side of `ofa_core.model.precision.INT8_MIN_D_MODEL`, below which `--precision int8` leaves a model in fp32:
the trained demo model (width 128) on its validation photos, and the `ofa-tiny` shape (width 256, random weights).

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
from bench_precision import demo  # noqa: F401 - the trained demo model fixture

from ofa_core import OFAError
from ofa_core.model import precision
from ofa_core.model.configuration import OFAConfig
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


def interleaved(run_fp32, run_int8, rounds: int = 5) -> tuple[float, float]:
    """Median seconds of each, their rounds interleaved so that both see the same machine load."""
    seconds: dict[str, list[float]] = {"fp32": [], "int8": []}
    run_fp32(), run_int8()  # warm-up
    for _ in range(rounds):
        for name, run in (("fp32", run_fp32), ("int8", run_int8)):
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return sorted(seconds["fp32"])[rounds // 2], sorted(seconds["int8"])[rounds // 2]


def test_int8_on_the_trained_demo_model(report, demo):
    """Where int8 does not pay: the demo model (width 128), trained, with its recipe's search, on its photos."""
    from bench_precision import RECIPE

    from ofa_core.inference.loading import load_model
    from ofa_core.inference.predictor import Predictor
    from ofa_core.inference.task_choice import choose_task
    from ofa_core.model.quantize import quantize_for_cpu
    from ofa_core.registry import load_plugins

    torch.set_num_threads(2)
    run, records, _ = demo
    model, processor = load_model(run)
    task, prompt, options = choose_task(load_plugins().registry(), "caption", "zh", {}, caller="the benchmark")
    generation = json.loads(RECIPE.read_text(encoding="utf-8"))["generation"]
    fp32 = Predictor(model.eval(), processor, task, prompt, options, generation)
    int8 = Predictor(quantize_for_cpu(model, encoder=True), processor, task, prompt, options, generation)
    assert not precision.int8_pays(model.config)
    for batch, count in ((1, 16), (8, len(records))):
        chosen = records[:count]

        def decode(predictor, chosen=chosen, batch=batch, count=count):
            return lambda: [predictor(chosen[start : start + batch]) for start in range(0, count, batch)]

        fp32_s, int8_s = interleaved(decode(fp32), decode(int8), rounds=3)
        report(
            f"trained demo model (width 128), batch {batch}, {count} photos: fp32 {fp32_s / count * 1000:.1f}, int8 "
            f"{int8_s / count * 1000:.1f} ms/image: int8 {fp32_s / int8_s:.2f}x fp32 (--precision int8: left in fp32)"
        )


def test_int8_at_tiny_width(report):
    """The narrowest official shape, `ofa-tiny` (width 256, random weights), where --precision int8 applies."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = OFAConfig.from_preset("ofa-tiny")
    fp32 = OFAForConditionalGeneration(config).eval()
    int8, applied = precision.apply(copy.deepcopy(fp32), "int8", "cpu")
    assert applied.precision == "int8"
    for batch in (1, 8):
        batch_inputs = inputs(batch)
        with torch.no_grad():
            fp32_s, int8_s = interleaved(
                lambda given=batch_inputs: fp32.generate(**given, **SETTINGS),
                lambda given=batch_inputs: int8.generate(**given, **SETTINGS),
            )
        report(
            f"ofa-tiny shape (width 256, {RESOLUTION} px) batch {batch}: fp32 {fp32_s / batch * 1000:.1f}, int8 "
            f"{int8_s / batch * 1000:.1f} ms/image: int8 {fp32_s / int8_s:.2f}x fp32 (--precision int8: applied)"
        )


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
