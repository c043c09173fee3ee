"""Precision modes: each runs and returns well-formed answers where supported, is refused with the fix where it would
be slow or wrong, is recorded with the predictions, and the agreement report behind the benchmark figures is right."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

import ofa_core
from ofa_core import OFAError
from ofa_core.cli import main
from ofa_core.inference.agreement import ModeReport, compare, token_agreement
from ofa_core.inference.loading import load_for_inference, load_model
from ofa_core.inference.task_choice import choose_task
from ofa_core.model import precision
from ofa_core.model.quantize import quantize_for_cpu
from ofa_core.testing import fake_image, tiny_checkpoint, tiny_dataset, tiny_model

SHORT = {"max_new_tokens": 4, "num_beams": 2}
PREDICT = ["--task", "caption", "--lang", "en", "--generation", "max_new_tokens=3", "--generation", "num_beams=1"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("precision") / "model")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for seed in range(3):
        fake_image(seed, (48, 32)).save(root / f"{seed}.png")
    return root


@pytest.fixture
def native_bf16(monkeypatch):
    """Make the bf16 support check answer `value` (the CPU of the test machine may lack or have it)."""

    def set_to(value: bool) -> None:
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: value)

    return set_to


@pytest.fixture
def int8_from_width(monkeypatch):
    """Lower the width from which int8 pays, so that the tiny model is quantized."""

    def set_to(width: int) -> None:
        monkeypatch.setattr(precision, "INT8_MIN_D_MODEL", width)

    return set_to


def generate(model) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    ids = torch.tensor([[0, 11, 12, 13, 2], [0, 14, 15, 2, 1]])
    images = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        return model.generate(input_ids=ids, patch_images=images, num_beams=3, max_new_tokens=5)


# --- detection and refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"), [(False, False, False), (True, False, True), (False, True, True)]
)
def test_native_bf16_is_avx512_bf16_or_amx(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert precision.cpu_has_native_bf16() is expected


def test_bf16_on_a_cpu_without_native_support_is_refused_with_the_fix(native_bf16):
    native_bf16(False)
    with pytest.raises(OFAError, match=r"^--precision bf16: this CPU has no native bf16 .* use int8 or fp32$"):
        precision.check("bf16", "cpu")
    native_bf16(True)
    precision.check("bf16", "cpu")


@pytest.mark.parametrize(
    ("mode", "device", "message"),
    [
        ("fp16", "cpu", r"fp16: half precision needs a GPU; on the CPU use bf16"),
        ("int8", "cuda", r"int8: the int8 mode runs on the CPU only; on cuda use bf16 or fp16"),
        ("int8", "mps", r"int8: checked on CPUs and CUDA GPUs only; on mps use fp32"),
        ("fp8", "cpu", r"fp8: not a precision; choose one of fp32, bf16, fp16, int8"),
    ],
)
def test_unsupported_modes_are_refused_in_one_line(mode, device, message):
    with pytest.raises(OFAError, match=message) as error:
        precision.check(mode, device)
    assert "\n" not in str(error.value)


def test_gpu_modes_need_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OFAError, match="^--precision fp16 on cuda: CUDA is not available here"):
        precision.check("fp16", "cuda")


def test_bf16_on_a_gpu_without_bf16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    with pytest.raises(OFAError, match="this GPU has no native bf16.*use fp16"):
        precision.check("bf16", "cuda")
    precision.check("fp16", "cuda")


def test_a_refused_mode_is_refused_before_anything_is_loaded(tmp_path):
    with pytest.raises(OFAError, match="^precision fp16: half precision needs a GPU"):
        load_for_inference(tmp_path / "no-such-model", "fp16", "cpu", option="precision")


# --- each mode runs -----------------------------------------------------------------------------------------------


def test_fp32_is_the_model_as_it_is():
    model = tiny_model()
    same, applied = precision.apply(model, "fp32", "cpu")
    assert same.dtype == torch.float32 and applied == precision.Applied("fp32", "fp32")
    assert torch.equal(generate(same), generate(tiny_model()))


def test_bf16_casts_and_generates(native_bf16):
    native_bf16(True)
    model, applied = precision.apply(tiny_model(), "bf16", "cpu")
    assert model.dtype == torch.bfloat16 and applied.precision == "bf16" and applied.notice is None
    out = generate(model)
    assert out.shape[0] == 2 and bool((out[:, 0] == 0).all())


def test_int8_on_a_narrow_model_is_left_in_fp32_with_a_notice():
    model = tiny_model()
    same, applied = precision.apply(model, "int8", "cpu")
    assert same is model and applied.precision == "fp32" and applied.requested == "int8"
    assert applied.notice == (
        "--precision int8: left in fp32: this model's width (32) is below 256, where int8 "
        "decoding is no faster than fp32"
    )


def test_int8_quantizes_encoder_decoder_and_projection_of_a_copy(int8_from_width):
    int8_from_width(32)
    model = tiny_model()
    fast, applied = precision.apply(model, "int8", "cpu")
    assert applied == precision.Applied("int8", "int8")
    assert isinstance(fast.lm_head, DynamicInt8Linear)
    assert isinstance(fast.model.encoder.layers[0].fc1, DynamicInt8Linear)
    assert isinstance(fast.model.decoder.layers[-1].self_attn.q_proj, DynamicInt8Linear)
    assert fast.lm_head.weight().qscheme() == torch.per_channel_affine
    assert not isinstance(model.lm_head, DynamicInt8Linear)  # the fp32 model is untouched
    out = generate(fast)
    assert out.shape[0] == 2 and bool((out[:, 0] == 0).all())


def test_int8_variants_keep_what_they_say_in_fp32():
    model = tiny_model()
    kept = quantize_for_cpu(model, keep_last_layer=True, per_channel=False)
    assert isinstance(kept.model.decoder.layers[0].fc1, DynamicInt8Linear)
    assert type(kept.model.decoder.layers[-1].fc1) is torch.nn.Linear
    assert type(kept.model.encoder.layers[0].fc1) is torch.nn.Linear
    assert kept.lm_head.weight().qscheme() == torch.per_tensor_affine


# --- loading path, CLI, pipeline ----------------------------------------------------------------------------------


def test_load_for_inference_reports_what_was_applied(model_dir):
    loaded = load_for_inference(model_dir, "int8", "cpu")
    assert loaded.precision.precision == "fp32" and "left in fp32" in loaded.precision.notice
    assert loaded.processor is not None and not loaded.model.training


def test_predict_records_the_precision_and_reports_images_per_second(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code = main(["predict", "--model", str(model_dir), *PREDICT, str(photos), "-o", str(out), "--precision", "int8"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(out.read_bytes().splitlines()) == 3
    assert "--precision int8: left in fp32" in err
    assert "3 images in " in err and "images/s, model loading excluded); 0 skipped; precision fp32" in err
    metadata = orjson.loads((tmp_path / "out.jsonl.meta.json").read_bytes())
    assert metadata["precision"] == "fp32" and metadata["requested_precision"] == "int8"
    assert metadata["task"] == "caption" and metadata["lang"] == "en"
    assert metadata["generation"] == {"max_new_tokens": 3, "num_beams": 1}

    code = main(["predict", "--model", str(model_dir), *PREDICT, str(photos), "-o", str(out), "--resume"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: --resume: ") and "--precision int8 (" in err


def test_predict_refuses_an_unsupported_precision_without_a_traceback(model_dir, photos, tmp_path, capsys):
    code = main(
        [
            "predict",
            "--model",
            str(model_dir),
            *PREDICT,
            str(photos),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--precision",
            "fp16",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert (
        err.strip()
        == "error: --precision fp16: half precision needs a GPU; on the CPU use bf16 (with native support) or int8"
    )
    assert not (tmp_path / "o.jsonl").exists()


def test_pipeline_takes_a_precision(model_dir, native_bf16):
    native_bf16(True)
    caption = ofa_core.pipeline("caption", model=model_dir, device="cpu", precision="bf16", generation=SHORT)
    assert caption.model.dtype == torch.bfloat16 and "precision='bf16'" in repr(caption)
    answer = caption(fake_image(1))
    assert isinstance(answer["prediction"], str) and isinstance(answer["text"], str)
    with pytest.warns(UserWarning, match="precision int8: left in fp32"):
        ofa_core.pipeline("caption", model=model_dir, device="cpu", precision="int8", generation=SHORT)
    with pytest.raises(OFAError, match="give one of them"):
        ofa_core.pipeline("caption", model=model_dir, dtype="bf16", precision="bf16")
    native_bf16(False)
    with pytest.raises(OFAError, match="^precision bf16: this CPU has no native bf16"):
        ofa_core.pipeline("caption", model=model_dir, device="cpu", precision="bf16")


def test_eval_refuses_an_unsupported_precision(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["eval", "recipes/demo_caption.json", "--checkpoint", ".", "--precision", "fp16"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --precision fp16: half precision needs a GPU; on the CPU use bf16 (with native support) or int8"
    )


# --- the agreement report ----------------------------------------------------------------------------------------


def test_token_agreement_counts_identical_answers_and_positions():
    assert token_agreement([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 6, 7]]) == (1, 4 / 6)
    assert token_agreement([], []) == (0, 1.0)
    with pytest.raises(ValueError, match="2 reference answers but 1"):
        token_agreement([[1], [2]], [[1]])


def test_report_line_states_agreement_and_both_scores():
    exact = ModeReport("fp32", 4, 4, 1.0, 200.0, ())
    fast = ModeReport("int8", 4, 3, 0.9, 198.0, ())
    assert fast.line(exact) == (
        "int8: identical best beams 3/4 (75%), identical tokens 90.0%; CIDEr-D 198.00 vs 200.00 (-1.00%)"
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained until it captions its four images: decisive outputs, as a trained model's are."""
    from ofa_core.registry import load_plugins

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("trained")
    records = tiny_dataset(root / "images", count=4)
    model, processor = load_model(tiny_checkpoint(root / "model"))
    task, prompt, _ = choose_task(load_plugins().registry(), "caption", "en", {}, caller="the test")
    sources = processor(text=[prompt.source.format(**r) for r in records], images=[r["image"] for r in records])
    labels = processor.tokenizer([f" {r['caption']}" for r in records], padding=True, return_tensors="pt")["input_ids"][
        :, 1:
    ]
    labels = labels.masked_fill(labels == processor.tokenizer.pad_token_id, -100)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(**sources, labels=labels).loss
        if loss.item() < 0.05:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), processor, task, prompt, records


def test_compare_reports_agreement_and_cider_on_a_trained_model(trained, native_bf16):
    from ofa_core.registry import load_plugins

    model, processor, task, prompt, records = trained
    metric = load_plugins().registry().namespace("metric").get("caption")

    def cider(predictions, references):
        scores = metric.build(metric.options(tokenize="en"))
        scores.update(predictions, references)
        return scores.compute()["cider"]

    native_bf16(True)
    models = {
        "fp32": model,
        "fp32 again": model,
        "int8": quantize_for_cpu(model, encoder=True),
        "bf16": precision.apply(copy.deepcopy(model), "bf16", "cpu")[0],
    }
    reports = compare(
        models,
        processor,
        task,
        prompt,
        None,
        {"num_beams": 3, "max_new_tokens": 6},
        records,
        [r["references"] for r in records],
        cider,
        batch_size=3,
    )
    exact, again = reports[0], reports[1]
    assert [r.mode for r in reports] == list(models) and all(r.images == 4 for r in reports)
    assert sum(p == r["caption"] for p, r in zip(exact.predictions, records)) >= 3  # trained: it captions its images
    assert exact.score > 100 and (again.same_best, again.same_tokens, again.score) == (4, 1.0, exact.score)
    for report in reports[2:]:
        assert 0 <= report.same_best <= 4 and 0.0 <= report.same_tokens <= 1.0 and report.score >= 0
        assert report.line(exact).startswith(f"{report.mode}: identical best beams {report.same_best}/4")
