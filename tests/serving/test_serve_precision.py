"""`ofa serve --precision`: the model is served in the chosen mode, `/health` says which, and a mode the device
cannot run stops the server before the model loads."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from ofa_core.cli import main
from ofa_core.inference.loading import load_for_inference
from ofa_core.model import precision
from tests.serving.conftest import FAST, b64, png_bytes


def test_health_reports_the_precision_and_bf16_answers(model_dir, tasks, monkeypatch):
    from ofa_core.serving.app import ServeSettings, create_app

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    loaded = load_for_inference(model_dir, "bf16", "cpu")
    assert loaded.model.dtype == torch.bfloat16
    app = create_app(
        loaded.model,
        loaded.processor,
        tasks,
        ServeSettings(max_wait_ms=1),
        model_name="tiny",
        precision=loaded.precision.precision,
    )
    with TestClient(app) as client:
        assert client.get("/health").json()["precision"] == "bf16"
        answer = client.post("/v1/predict", json={"task": "caption", "image": b64(png_bytes(2)), "generation": FAST})
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json()["prediction"], str)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--precision", "fp16"],
            "error: --precision fp16: half precision needs a GPU; on the CPU use bf16 (with native support) or int8",
        ),
        (
            ["--precision", "int8", "--device", "cuda"],
            "error: --precision int8: the int8 mode runs on the CPU only; on cuda use bf16 or fp16",
        ),
    ],
)
def test_an_unsupported_precision_stops_serve_before_loading(model_dir, capsys, monkeypatch, argv, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # int8 is refused on a GPU whether one is here or not
    monkeypatch.setattr("ofa_core.inference.loading.load_model", lambda *args, **kwargs: pytest.fail("model loaded"))
    code = main(["serve", "--model", str(model_dir), "--task", "caption", "--port", "0", *argv])
    assert code == 2
    assert capsys.readouterr().err.strip() == message
