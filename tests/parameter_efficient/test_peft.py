"""Parameter-efficient runs: only the method's parameters train, checkpoints are small deltas that every loader applies
to their base (refusing a changed base), `ofa merge` folds LoRA and BitFit into a plain model, and resume works."""

from __future__ import annotations

import base64

import orjson
import pytest
import torch
from safetensors import safe_open

from ofa_core.cli import main
from ofa_core.inference.loading import load_model
from ofa_core.recipe.peft import PeftSection, trains
from ofa_core.recipe.schema import RecipeError, build
from ofa_core.testing import fake_image, run_recipe, tiny_checkpoint


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def recipe(peft: dict | None, output: str, **training) -> dict:
    return {
        "model": {"checkpoint": "model"},
        "task": {"name": "caption", "lang": "zh"},
        "data": {"reader": {"name": "muge", "folder": "MUGE"}},
        "generation": {"num_beams": 2, "max_new_tokens": 4},
        **({"peft": peft} if peft else {}),
        "training": {
            "per_device_train_batch_size": 4,
            "save_steps": 1,
            "logging_steps": 1,
            "report_to": [],
            "learning_rate": 1e-2,
            "output_dir": output,
            **training,
        },
    }


def tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), "pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def logits(model, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    inputs = {
        "input_ids": torch.tensor([[0, 5, 6, 7, 2]]),
        "patch_images": torch.rand(1, 3, 64, 64, generator=generator),
        "decoder_input_ids": torch.tensor([[0, 8, 9]]),
    }
    with torch.no_grad():
        return model.eval()(**inputs).logits


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"method": "lora", "adapter_dim": 8},
            "peft.adapter_dim: adapter_dim belongs to 'adapter' only, not to 'lora'",
        ),
        ({"method": "bitfit", "r": 4}, "peft.r: r belongs to 'lora' only, not to 'bitfit'"),
        ({"method": "prefix", "encoder_prompt": False, "decoder_prompt": False}, "both false"),
        ({"method": "lorra"}, "(did you mean 'lora'?)"),
        ({"method": "lora", "targets": []}, "peft.targets: targets must list one module pattern"),
    ],
)
def test_the_section_refuses_what_its_method_does_not_take(section, message):
    with pytest.raises(RecipeError) as error:
        build(PeftSection, section, "peft")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bitfit_trains_the_official_biases_only():
    settings = PeftSection("bitfit").settings()
    assert trains(settings, "model.encoder.layers.0.fc1.bias") and trains(settings, "model.decoder.layer_norm.bias")
    assert trains(settings, "model.decoder.layers.1.cross_attn_layer_norm.bias")  # fairseq: encoder_attn_layer_norm
    for frozen in (
        "model.encoder.layers.0.fc1.weight",
        "model.encoder.layers.0.ffn_layer_norm.bias",
        "model.encoder.layers.0.self_attn_mid_layer_norm.bias",
        "model.encoder.layernorm_embedding.bias",
        "model.encoder.layers.0.self_attn.q_proj.bias",
    ):
        assert not trains(settings, frozen), frozen


def test_a_lora_run_saves_a_delta_that_loads_merges_and_predicts_as_its_merged_model(data, capsys):
    summary = run_recipe(
        recipe({"method": "lora", "r": 4, "targets": ["q_proj", "v_proj", "fc1"]}, "lora"), data, max_steps=2
    )
    assert summary["peft"] == "lora" and 0 < summary["trainable_parameters"] < 0.2 * summary["frozen_parameters"]
    checkpoint = data / "lora" / "checkpoint-2"
    assert not (checkpoint / "model.safetensors").exists() and (checkpoint / "adapter_config.json").is_file()
    saved = tensors(checkpoint / "adapter_model.safetensors")
    assert saved and all(".lora_A." in key or ".lora_B." in key for key in saved)
    assert sum(t.numel() for t in saved.values()) == summary["trainable_parameters"]
    assert any(t.abs().sum() > 0 for key, t in saved.items() if ".lora_B." in key)  # B starts at zero: it trained

    delta, _ = load_model(data / "lora")  # the run directory -> its newest checkpoint, base + delta, merged
    base, _ = load_model(data / "model")
    assert not torch.allclose(logits(delta), logits(base), atol=1e-5)
    assert main(["merge", str(data / "lora"), "--out", str(data / "merged")]) == 0
    merged, _ = load_model(data / "merged")
    assert torch.allclose(logits(merged), logits(delta), atol=1e-6)
    assert not (data / "merged" / "adapter_config.json").exists()

    fake_image(7).save(data / "photo.png")
    for model, out in ((data / "lora", "delta.jsonl"), (data / "merged", "merged.jsonl")):
        assert (
            main(
                [
                    "predict",
                    "--model",
                    str(model),
                    "--task",
                    "caption",
                    "--lang",
                    "zh",
                    str(data / "photo.png"),
                    "-o",
                    str(data / out),
                ]
            )
            == 0
        )
    delta_rows = [orjson.loads(line) for line in (data / "delta.jsonl").read_bytes().splitlines()]
    merged_rows = [orjson.loads(line) for line in (data / "merged.jsonl").read_bytes().splitlines()]
    assert len(delta_rows) == 1 and [r["text"] for r in delta_rows] == [r["text"] for r in merged_rows]


def test_a_changed_base_is_refused_in_one_line(data, tmp_path, capsys):
    tiny_checkpoint(tmp_path / "model")
    (tmp_path / "MUGE").symlink_to(data / "MUGE")
    run_recipe(recipe({"method": "bitfit"}, "run"), tmp_path, max_steps=1)
    tiny_checkpoint(tmp_path / "model", seed=1)  # the base is overwritten by other weights
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "run"), "--out", str(tmp_path / "merged")]) == 2
    error = capsys.readouterr().err.strip()
    assert "base model" in error and "has changed" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "merged").exists()


def test_a_peft_run_resumes_to_the_weights_of_an_uninterrupted_one(data):
    peft = {"method": "lora", "r": 2}
    fixed = {"seed": 3, "lr_scheduler_type": "constant"}  # the schedule must not depend on max_steps
    straight = run_recipe(recipe(peft, "straight", **fixed), data, max_steps=2)
    run_recipe(recipe(peft, "resumed", **fixed), data, max_steps=1)
    resumed = run_recipe(recipe(peft, "resumed", resume_from_checkpoint="auto", **fixed), data, max_steps=2)
    assert straight["steps"] == resumed["steps"] == 2
    a = tensors(data / "straight" / "checkpoint-2" / "adapter_model.safetensors")
    b = tensors(data / "resumed" / "checkpoint-2" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_prefix_and_adapter_deltas_hold_their_modules_only_and_are_not_merged(data, capsys):
    for method, part in (("prefix", "prompt_encoder"), ("adapter", ".adapter.")):
        peft = {
            "method": method,
            **({"encoder_prompt_length": 4, "decoder_prompt_length": 4} if method == "prefix" else {"adapter_dim": 8}),
        }
        summary = run_recipe(recipe(peft, method), data, max_steps=1)
        saved = tensors(data / method / "checkpoint-1" / "adapter_model.safetensors")
        assert (
            saved
            and all(part in key for key in saved)
            and sum(t.numel() for t in saved.values()) == summary["trainable_parameters"]
        )
        model, _ = load_model(data / method)
        assert all(torch.equal(dict(model.named_parameters())[key], value) for key, value in saved.items())
        capsys.readouterr()
        assert main(["merge", str(data / method), "--out", str(data / f"{method}-merged")]) == 2
        error = capsys.readouterr().err.strip()
        assert f"a {method} delta adds modules a plain model lacks" in error and len(error.splitlines()) == 1


def test_resuming_a_full_run_s_checkpoint_with_a_peft_recipe_is_refused(data):
    run_recipe(recipe(None, "full"), data, max_steps=1)
    with pytest.raises(Exception) as error:
        run_recipe(recipe({"method": "bitfit"}, "full", resume_from_checkpoint="auto"), data, max_steps=2)
    assert "was written by a run without a peft section" in str(error.value)


def test_the_pipeline_and_serving_s_loader_apply_a_delta(data):
    """`ofa_core.pipeline` and `ofa serve` (through `load_for_inference`) run base + delta like `ofa predict`."""
    from fastapi.testclient import TestClient

    from ofa_core.inference.loading import load_for_inference
    from ofa_core.inference.pipeline import pipeline
    from ofa_core.serving.app import ServeSettings, create_app
    from ofa_core.serving.requests import served_tasks
    from ofa_core.testing import registry_with

    run_recipe(recipe({"method": "lora", "r": 4}, "served"), data, max_steps=1)
    fake_image(3).save(data / "served.png")
    loaded = load_for_inference(data / "served", "fp32", "cpu")
    merged, _ = load_model(data / "served")
    assert torch.equal(logits(loaded.model), logits(merged))
    caption = pipeline(
        "caption", data / "served", device="cpu", lang="zh", generation={"num_beams": 2, "max_new_tokens": 6}
    )
    app = create_app(
        loaded.model,
        loaded.processor,
        served_tasks(registry_with(installed=True), ["caption"]),
        ServeSettings(max_wait_ms=1),
        model_name="served",
    )
    image = base64.b64encode((data / "served.png").read_bytes()).decode()
    with TestClient(app) as client:
        response = client.post(
            "/v1/predict",
            json={"task": "caption", "lang": "zh", "image": image, "generation": {"num_beams": 2, "max_new_tokens": 6}},
        )
    assert response.status_code == 200, response.text
    served, local = response.json(), caption(str(data / "served.png"))
    assert served["prediction"] == local["prediction"], (served, local)
