"""The HTTP API of `ofa serve`: every endpoint, every built-in task, multipart, boxes, batching, the CLI verb."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import FAST, async_client, b64, metric, png_bytes, run_async

LABELS = ["cat", "dog", "red car"]


@pytest.fixture(scope="module")
def client(make_app):
    with TestClient(make_app(max_wait_ms=1)) as client:
        yield client


def test_health(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "model": "tiny",
        "precision": "fp32",
        "language": "zh",
        "tasks": ["caption", "vqa", "classification"],
    }


def test_the_models_recorded_language_wins_over_its_tokenizers(loaded, tasks, client):
    from fastapi.testclient import TestClient

    from ofa_core.serving.app import create_app

    assert client.get("/v1/tasks").json()["language"] == "zh"  # the tiny tokenizer's
    with TestClient(create_app(*loaded, tasks, model_name="tiny", language="en")) as other:  # e.g. its ofa_task.json
        assert other.get("/v1/tasks").json()["language"] == "en" and other.get("/health").json()["language"] == "en"


def test_tasks_lists_fields_options_and_languages(client):
    tasks = {task["name"]: task for task in client.get("/v1/tasks").json()["tasks"]}
    assert set(tasks) == {"caption", "vqa", "classification"}
    for task in tasks.values():
        assert set(task) == {"name", "description", "languages", "fields", "options", "closed_set"}
        assert task["description"]
    assert tasks["caption"]["fields"] == [] and tasks["caption"]["options"] == {}
    assert tasks["caption"]["closed_set"] is False and set(tasks["caption"]["languages"]) == {"zh", "en"}
    assert tasks["vqa"]["fields"] == ["question"]
    assert tasks["vqa"]["options"]["answers"] == [] and tasks["vqa"]["options"]["inference"] == "rank"
    assert tasks["classification"]["options"]["labels"] is None and tasks["classification"]["closed_set"] is True
    assert "labels_file" not in tasks["classification"]["options"]  # files on the server are not a request's to name


def test_metrics_and_openapi(client):
    client.post("/v1/predict", json={"task": "caption", "image": b64(png_bytes()), "generation": FAST})
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    for name in (
        "ofa_requests_total",
        "ofa_errors_total",
        "ofa_request_latency_seconds_bucket",
        "ofa_batch_size_bucket",
        "ofa_queue_depth",
    ):
        assert name in answer.text
    assert metric(answer.text, "ofa_requests_total", task="caption", status="200") >= 1
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert {"/health", "/v1/tasks", "/metrics"} <= set(spec["paths"])


def _check_answer(answer, task, request_id=None):
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task"] == task and isinstance(body["prediction"], str)
    assert isinstance(body["latency_ms"], float) and body["latency_ms"] >= 0
    assert set(body) <= {"id", "task", "prediction", "ranking", "box", "latency_ms"}
    if request_id is not None:
        assert body["id"] == request_id
    else:
        assert isinstance(body["id"], str) and body["id"]
    if "box" in body:
        assert len(body["box"]) == 4
    return body


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_caption(client, lang):
    body = _check_answer(
        client.post(
            "/v1/predict",
            json={"task": "caption", "image": b64(png_bytes(1)), "lang": lang, "id": "c1", "generation": FAST},
        ),
        "caption",
        "c1",
    )
    assert "ranking" not in body


def test_vqa_open_and_closed(client):
    open_ = _check_answer(
        client.post(
            "/v1/predict",
            json={"task": "vqa", "image": b64(png_bytes(2)), "question": "what is it?", "generation": FAST},
        ),
        "vqa",
    )
    assert "ranking" not in open_
    closed = _check_answer(
        client.post(
            "/v1/predict",
            json={
                "task": "vqa",
                "image": b64(png_bytes(2)),
                "question": "is it red?",
                "options": {"answers": ["yes", "no"]},
            },
        ),
        "vqa",
    )
    assert closed["prediction"] in ("yes", "no")


def test_zero_shot_classification(client):
    body = _check_answer(
        client.post(
            "/v1/predict",
            json={"task": "classification", "image": b64(png_bytes(3)), "options": {"labels": LABELS, "top_k": 3}},
        ),
        "classification",
    )
    assert body["prediction"] in LABELS
    assert [entry["answer"] for entry in body["ranking"]][0] == body["prediction"]
    assert sorted(entry["answer"] for entry in body["ranking"]) == sorted(LABELS)
    scores = [entry["score"] for entry in body["ranking"]]
    assert scores == sorted(scores, reverse=True)


def test_multipart_equals_json(client):
    image = png_bytes(4, (50, 20))
    as_json = client.post(
        "/v1/predict", json={"task": "classification", "image": b64(image), "id": "same", "options": {"labels": LABELS}}
    ).json()
    as_form = client.post(
        "/v1/predict",
        files={"image": ("x.png", image, "image/png")},
        data={"task": "classification", "id": "same", "options": '{"labels": ["cat", "dog", "red car"]}'},
    )
    body = _check_answer(as_form, "classification", "same")
    assert body["prediction"] == as_json["prediction"]
    for a, b in zip(body["ranking"], as_json["ranking"]):
        assert a["answer"] == b["answer"] and abs(a["score"] - b["score"]) < 1e-5
    vqa = client.post(
        "/v1/predict",
        files={"image": ("x.jpg", png_bytes(5, fmt="JPEG"), "image/jpeg")},
        data={"task": "vqa", "question": "what is it?", "generation": '{"max_new_tokens": 4}'},
    )
    _check_answer(vqa, "vqa")


def _stub(text):
    """A predictor factory whose predictions are `text` (no model)."""

    def factory(model, processor, spec, prompt, options, generation):
        return lambda records: [{"id": r["id"], "text": text, "prediction": text} for r in records]

    return factory


def test_box_in_original_pixels(make_app):
    with TestClient(make_app(predictor_factory=_stub("<bin_0> <bin_0> <bin_999> <bin_499>"))) as client:
        body = client.post("/v1/predict", json={"task": "caption", "image": b64(png_bytes(0, (200, 100)))}).json()
    x0, y0, x1, y1 = body["box"]
    assert (x0, y0) == (0, 0) and 199 <= x1 <= 200 and 49 <= y1 <= 50
    with TestClient(make_app(predictor_factory=_stub("a red car"))) as client:
        assert "box" not in client.post("/v1/predict", json={"task": "caption", "image": b64(png_bytes())}).json()


def _requests():
    """Requests that can share batches: open-ended VQA and zero-shot classification, several images each."""
    vqa = [
        {
            "task": "vqa",
            "image": b64(png_bytes(10 + i, (30 + 9 * i, 40))),
            "question": q,
            "id": f"v{i}",
            "generation": FAST,
        }
        for i, q in enumerate(["what is it?", "what color is the car?", "is it a cat?", "where?"])
    ]
    labels = [
        {
            "task": "classification",
            "image": b64(png_bytes(20 + i, (40, 25 + 7 * i))),
            "id": f"c{i}",
            "options": {"labels": LABELS},
        }
        for i in range(4)
    ]
    return vqa + labels


def test_batched_equals_one_at_a_time(make_app):
    requests = _requests()

    async def one_at_a_time():
        async with async_client(make_app(max_batch=1, max_wait_ms=0)) as client:
            return [(await client.post("/v1/predict", json=r)).json() for r in requests]

    async def concurrently():
        async with async_client(make_app(max_batch=4, max_wait_ms=300)) as client:
            answers = await asyncio.gather(*(client.post("/v1/predict", json=r) for r in requests))
            return [a.json() for a in answers], (await client.get("/metrics")).text

    single = run_async(one_at_a_time())
    batched, metrics = run_async(concurrently())
    for alone, together in zip(single, batched):
        assert alone["id"] == together["id"] and alone["prediction"] == together["prediction"], (alone, together)
        assert ("ranking" in alone) == ("ranking" in together)
        for a, b in zip(alone.get("ranking", []), together.get("ranking", [])):
            # float32 sums differ in the last bits between batch sizes: 1e-5 relative to the log-probability
            assert a["answer"] == b["answer"] and abs(a["score"] - b["score"]) <= 1e-5 * max(1.0, abs(a["score"]))
    passes = metric(metrics, "ofa_batch_size_count")
    assert passes < len(requests), "no batch held more than one request"
    assert metric(metrics, "ofa_batch_size_bucket", le="1.0") < passes


def test_cli_errors(model_dir, tmp_path, capsys):
    from ofa_core.cli.main import main

    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["serve", "--model", str(model_dir), "--task", "captoin"]) == 2
    assert "did you mean 'caption'" in capsys.readouterr().err
    assert main(["serve", "--model", str(model_dir), "--max-batch", "0"]) == 2
    assert "--max-batch" in capsys.readouterr().err


def test_cli_serves_and_stops(model_dir):
    """`python -m ofa_core serve` answers over a real socket and exits 0 on Ctrl-C."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ofa_core",
            "serve",
            "--model",
            str(model_dir),
            "--task",
            "classification",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert health.json()["tasks"] == ["classification"]
        answer = httpx.post(
            f"{url}/v1/predict",
            json={"task": "classification", "image": b64(png_bytes()), "options": {"labels": LABELS}},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["prediction"] in LABELS
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    err = server.stderr.read().decode()
    assert code == 0, err
    assert f"http://127.0.0.1:{port}" in err


def test_page_and_its_files_are_served_when_present(client):
    from ofa_core.serving.app import PAGE

    if not (PAGE / "index.html").is_file():
        pytest.skip("no web page in ofa_core/serving/page")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in sorted(PAGE.iterdir()):
        if path.is_file() and path.name != "index.html":
            assert client.get(f"/static/{path.name}").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
