"""onnxruntime against PyTorch: beam-5 caption generation on CPU (2 threads), CN-base shape, random weights.

Run:  python -m pytest benchmarks/bench_onnx.py --benchmark-columns=median,rounds

The setting of benchmarks/bench_generate.py (the `ofa-cn-base` shape at 256 px, the Chinese caption prompt, 5 beams,
16 tokens forced by min/max length, no-repeat 3), with the model exported by `ofa_core.export.onnx.export_model`
(fp32 and --int8 graphs). Modes: PyTorch fp32 (exact mode), int8 and bf16 (`ofa_core.model.precision`), onnxruntime
fp32 and int8, each through its own `generate()` (the same official search), one round of every mode after another,
3 rounds: it reports each mode's median ms per image, its ratio to PyTorch fp32, whether the best beams of onnxruntime
fp32 equal exact mode's, and the load average around the rounds. On the trained demo caption model (trained by its
recipe unless runs/demo_caption exists) it reports what the exported graphs answer on the 60 validation photos
(identical best answers, identical tokens, CIDEr-D) and images/s at batch 8, modes interleaved batch by batch. And
`ofa predict` itself, on a folder of real photos: the CN-base model directory against its exported folder
(`--backend onnxruntime`), images/s at batch 1 and 8 with identical texts.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest
import torch
from bench_generate import NEW_TOKENS, RESOLUTION, SETTINGS, inputs
from bench_precision import demo  # noqa: F401 - the trained demo model fixture

from ofa_core import OFAError
from ofa_core.model import precision
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.model.search import special_token_ids
from ofa_core.testing import tiny_processor

pytest.importorskip("onnxruntime")

from ofa_core.export.onnx import export_model
from ofa_core.exported.runtime import ExportedModel

THREADS = 2
MODES = ("torch fp32", "torch int8", "torch bf16", "ort fp32", "ort int8")


@pytest.fixture(scope="module")
def cn_base() -> tuple:
    """The CN-base shape with random weights: the model, its directory (with the processor) and its exported
    folder (fp32 and int8 graphs)."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    exact = OFAForConditionalGeneration(OFAConfig.from_preset("ofa-cn-base")).eval()
    folder = Path(tempfile.mkdtemp(prefix="ofa-bench-onnx-"))
    processor = tiny_processor(patch_image_size=RESOLUTION)
    exact.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    export_model(exact, processor, folder / "exported", int8=True)
    return exact, folder / "model", folder / "exported"


@pytest.fixture(scope="module")
def models(cn_base) -> dict:
    """Each mode by name; a mode this machine cannot run maps to why."""
    exact, _, exported = cn_base
    found: dict = {"torch fp32": exact}
    for mode in ("int8", "bf16"):
        try:
            found[f"torch {mode}"] = precision.apply(copy.deepcopy(exact), mode, "cpu")[0]
        except OFAError as error:
            found[f"torch {mode}"] = str(error)
    for mode in ("fp32", "int8"):
        found[f"ort {mode}"] = ExportedModel.load(exported, mode, threads=THREADS)
    return found


def _generate(model, batch_inputs: dict) -> torch.Tensor:
    config = official_generation_config("caption", **special_token_ids(model.config))
    config.update(**SETTINGS)
    attention = torch.ones_like(batch_inputs["input_ids"])
    return model.generate(
        batch_inputs["input_ids"],
        generation_config=config,
        attention_mask=attention,
        patch_images=batch_inputs["patch_images"],
        patch_masks=torch.ones(batch_inputs["input_ids"].shape[0], dtype=torch.bool),
    )


@pytest.mark.parametrize("batch", [1, 8])
def test_generate_speed(benchmark, report, models, batch):
    """Every mode once per round, rounds interleaved so that all modes see the same machine load (the machine is
    shared); each mode's figure is its median over the rounds."""
    runnable = {mode: model for mode, model in models.items() if not isinstance(model, str)}
    for mode, model in models.items():
        if isinstance(model, str):
            report(f"{mode:10s} batch {batch}: not measured: {model}")
    batch_inputs = inputs(batch)
    seconds: dict[str, list[float]] = {mode: [] for mode in runnable}
    outputs: dict[str, torch.Tensor] = {}

    def one_round() -> None:
        for mode, model in runnable.items():
            started = time.perf_counter()
            outputs[mode] = _generate(model, batch_inputs)
            seconds[mode].append(time.perf_counter() - started)

    for model in runnable.values():
        _generate(model, batch_inputs)  # warm-up
    loads = [os.getloadavg()[0]]
    benchmark.pedantic(one_round, rounds=3, iterations=1)
    loads.append(os.getloadavg()[0])
    median = {mode: sorted(values)[len(values) // 2] / batch * 1000 for mode, values in seconds.items()}
    for mode in runnable:
        assert outputs[mode].shape == (batch, NEW_TOKENS + 2)
        line = f"{mode:10s} batch {batch}: {median[mode]:7.1f} ms/image"
        if mode != "torch fp32":
            line += f"; {median['torch fp32'] / median[mode]:.2f}x torch fp32"
        if mode == "ort fp32":
            same = bool(torch.equal(outputs[mode], outputs["torch fp32"]))
            line += f"; best beams {'identical to' if same else 'DIFFERENT from'} torch fp32"
        report(line)
    report(f"batch {batch}: load average {loads[0]:.1f} before and {loads[1]:.1f} after the rounds (2 cores)")
    benchmark.extra_info["ms_per_image"] = median


def test_agreement_and_speed_on_the_trained_demo_model(report, demo, tmp_path):
    """The trained demo caption model, exported (fp32 and int8 graphs), against PyTorch fp32 on its 60 validation
    photos with the recipe's search: identical best answers, identical tokens, CIDEr-D, and images/s at batch 8."""
    import json

    from bench_precision import RECIPE

    from ofa_core.export.onnx import export_onnx
    from ofa_core.inference.agreement import answer_tokens, token_agreement
    from ofa_core.inference.loading import load_model
    from ofa_core.inference.predictor import Predictor
    from ofa_core.inference.task_choice import choose_task
    from ofa_core.registry import load_plugins

    torch.set_num_threads(THREADS)
    run, records, references = demo
    model, processor = load_model(run)
    export_onnx(run, tmp_path / "demo", int8=True)
    registry = load_plugins().registry()
    task, prompt, options = choose_task(registry, "caption", "zh", {}, caller="the benchmark")
    metric = registry.namespace("metric").get("caption")
    generation = json.loads(RECIPE.read_text(encoding="utf-8"))["generation"]
    modes = {
        "torch fp32": model.eval(),
        "onnxruntime fp32": ExportedModel.load(tmp_path / "demo", "fp32", threads=THREADS),
        "onnxruntime int8": ExportedModel.load(tmp_path / "demo", "int8", threads=THREADS),
    }
    predictors = {
        mode: Predictor(runner, processor, task, prompt, options, dict(generation)) for mode, runner in modes.items()
    }
    rows: dict[str, list[dict]] = {mode: [] for mode in modes}
    seconds = dict.fromkeys(modes, 0.0)
    for predictor in predictors.values():
        predictor(records[:8])  # warm-up
    for start in range(0, len(records), 8):  # modes interleaved batch by batch: each sees the same machine load
        for mode, predictor in predictors.items():
            began = time.perf_counter()
            rows[mode] += predictor(records[start : start + 8])
            seconds[mode] += time.perf_counter() - began
    exact_tokens = answer_tokens(rows["torch fp32"], processor.tokenizer)
    for mode in modes:
        tokens = answer_tokens(rows[mode], processor.tokenizer)
        same, share = token_agreement(exact_tokens, tokens)
        scores = metric.build(metric.options(tokenize="zh"))
        scores.update([row["prediction"] for row in rows[mode]], list(references))
        rate = len(records) / seconds[mode]
        report(
            f"demo {mode}: identical best answers {same}/{len(tokens)}, identical tokens {share:.1%}, CIDEr-D "
            f"{scores.compute()['cider']:.2f}; {rate:.1f} images/s at batch 8 "
            f"({seconds['torch fp32'] / seconds[mode]:.2f}x torch fp32)"
        )
        if mode == "onnxruntime fp32":
            assert same == len(records)


PHOTO_COPIES = 4


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory) -> Path:
    """The parity suite's real photos (scikit-image's astronaut, cat, coffee and camera man, as JPEG), each
    `PHOTO_COPIES` times: 16 files."""
    rows = (Path(__file__).resolve().parents[1] / "tests/official/data/caption_zh.tsv").read_text().splitlines()
    folder = tmp_path_factory.mktemp("real-photos")
    for row in rows:
        fields = row.split("\t")
        for copy_index in range(PHOTO_COPIES):
            (folder / f"{fields[1]}-{copy_index}.jpg").write_bytes(base64.b64decode(fields[4]))
    return folder


@pytest.mark.parametrize("batch", [1, 8])
def test_predict_images_per_second_on_real_photos(report, cn_base, real_photos, tmp_path, batch):
    """`ofa predict` as a user runs it, on the CN-base shape: the PyTorch model directory and its exported folder
    with `--backend onnxruntime`, beam 5 and 16 new tokens, each as a fresh command, the two alternating over
    2 rounds; images/s is what `predict` prints (model loading excluded), the texts must be identical."""
    _, model_dir, exported = cn_base
    common = [
        "--task",
        "caption",
        "--lang",
        "zh",
        "--batch-size",
        str(batch),
        "--generation",
        "num_beams=5",
        "--generation",
        f"max_new_tokens={NEW_TOKENS}",
        "--generation",
        "no_repeat_ngram_size=3",
        str(real_photos),
    ]
    commands = {
        "torch fp32": ["--model", str(model_dir)],
        "onnxruntime fp32": ["--backend", "onnxruntime", "--model", str(exported)],
    }
    rates: dict[str, list[float]] = {name: [] for name in commands}
    texts: dict[str, list[str]] = {}
    for _ in range(2):
        for name, extra in commands.items():
            out = tmp_path / f"{name.replace(' ', '-')}.jsonl"
            result = subprocess.run(
                [sys.executable, "-m", "ofa_core", "predict", *extra, *common, "-o", str(out), "--overwrite"],
                capture_output=True,
                text=True,
                check=True,
            )
            rate = re.search(r"\(([\d.]+) images/s, model loading excluded\)", result.stderr)
            assert rate, result.stderr
            rates[name].append(float(rate.group(1)))
            texts[name] = [(row["id"], row["text"]) for row in map(orjson.loads, out.read_bytes().splitlines())]
    assert texts["torch fp32"] == texts["onnxruntime fp32"]
    best = {name: max(values) for name, values in rates.items()}
    for name, values in rates.items():
        report(
            f"ofa predict {name} batch {batch}: {best[name]:.2f} images/s (best of {len(values)}; "
            f"{best[name] / best['torch fp32']:.2f}x torch fp32) on {len(list(real_photos.iterdir()))} real photos"
        )
