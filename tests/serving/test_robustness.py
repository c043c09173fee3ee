"""Malformed requests get the right 4xx and a one-line JSON error; overload, timeouts, failures and shutdown."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib

from fastapi.testclient import TestClient

from ofa_core import OFAError
from tests.serving.conftest import FAST, async_client, b64, metric, png_bytes, run_async

LABELS = ["cat", "dog"]


def huge_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid single-colour 1-bit PNG of width x height: a few tens of KB on disk, 400 megapixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def malformed_cases() -> list[tuple[str, dict, int]]:
    """(what, keyword arguments of client.post, expected status): well over 100 bad requests."""
    good_png, jpeg = png_bytes(0), png_bytes(1, (64, 48), fmt="JPEG")
    ok = {"task": "vqa", "image": b64(good_png), "question": "what is it?"}
    cases: list[tuple[str, dict, int]] = []

    def add(what, status, **post):
        cases.append((what, post, status))

    for text in [
        "not base64!",
        "abc",
        "====",
        "a" * 5,
        "%%%%",
        "YWJj*",
        "\u00e9t\u00e9",
        "data:image/png;base64,@@",
        "Zm9v=YmFy",
        "QQ",
    ]:
        add(f"bad base64 {text[:10]!r}", 400, json={**ok, "image": text})
    for cut in [10, 50, 100, 200, 300, 400, 500, len(jpeg) // 2, len(jpeg) - 200, len(jpeg) - 40]:
        add(f"JPEG truncated at {cut}", 400, json={**ok, "image": b64(jpeg[:cut])})
    for cut in [20, 40, 60, len(good_png) // 2, len(good_png) - 20]:
        add(f"PNG truncated at {cut}", 400, json={**ok, "image": b64(good_png[:cut])})
    corrupt = bytearray(good_png)
    corrupt[60:70] = b"\xff" * 10
    add("PNG with corrupted data", 400, json={**ok, "image": b64(bytes(corrupt))})
    big = huge_png()
    add("20000x20000 PNG", 413, json={**ok, "image": b64(big)})
    add(
        "20000x20000 PNG, multipart",
        413,
        files={"image": ("big.png", big, "image/png")},
        data={"task": "vqa", "question": "q"},
    )
    add(
        "7000x7000 PNG (over --max-pixels, under PIL's own limit)", 413, json={**ok, "image": b64(huge_png(7000, 7000))}
    )
    for blob in [
        b"hello world",
        b"\x00" * 64,
        b"%PDF-1.4\n",
        b"GIF89a",
        b"\x89PNG\r\n\x1a\n",
        b"<svg></svg>",
        b'{"json": true}',
        bytes(range(256)),
        b"BM" + b"\x00" * 20,
        b"RIFF\x00\x00\x00\x00WEBP",
    ]:
        add(f"non-image bytes {blob[:8]!r}", 400, json={**ok, "image": b64(blob)})
    add("empty image", 400, json={**ok, "image": ""})
    for task in ["captoin", "VQA", "nope", "", "grounding-x", "classification ", "a" * 500]:
        add(f"unknown task {task[:12]!r}", 404, json={**ok, "task": task})
    for task in [1, None, ["vqa"], {"a": 1}]:
        add(f"task of type {type(task).__name__}", 422 if task is None else 400, json={**ok, "task": task})
    for missing in ["task", "image", "question"]:
        add(f"missing {missing}", 422, json={k: v for k, v in ok.items() if k != missing})
    for extra in ["questoin", "label", "answers", "num_beams", "prompt", "x" * 300]:
        add(f"extra field {extra[:10]!r}", 422, json={**ok, extra: "x"})
    add("caption with a question", 422, json={"task": "caption", "image": ok["image"], "question": "why?"})
    for question in [1, ["a"], {"q": 1}, "", "   "]:
        add(f"question {question!r}", 400, json={**ok, "question": question})
    for lang in ["fr", "EN", 3, ["en"]]:
        add(f"lang {lang!r}", 400, json={**ok, "lang": lang})
    for request_id in [[1], {"a": 1}, True, 1.5]:
        add(f"id {request_id!r}", 400, json={**ok, "id": request_id})
    classification = {"task": "classification", "image": ok["image"]}
    for options in [
        None,
        {},
        {"labels": []},
        {"labels": "cat"},
        {"labels": ["cat", "cat"]},
        {"labels": ["cat", ""]},
        {"labels": LABELS, "inference": "magic"},
        {"labels": LABELS, "top_k": 0},
        {"labels": LABELS, "top_k": "3"},
        {"labels": LABELS, "colour": "red"},
        {"labels_file": "/etc/passwd"},
        {"labels": LABELS, "labels_file": "x.txt"},
        [1, 2],
        "not json{",
    ]:
        add(f"classification options {str(options)[:30]}", 400, json={**classification, "options": options})
    for options in [{"answers_file": "/etc/hosts"}, {"top_k": 3}, {"inference": "beam"}, {"answers": 7}]:
        add(f"vqa options {options}", 400, json={**ok, "options": options})
    add("caption options", 400, json={"task": "caption", "image": ok["image"], "options": {"labels": LABELS}})
    for generation in [
        {"max_new_tokens": 65},
        {"max_new_tokens": 10**9},
        {"max_length": 1000},
        {"num_beams": 9},
        {"num_beams": 100},
        {"num_beam_groups": 50},
        {"max_new_tokens": -1},
        {"max_new_tokens": "5"},
        {"num_beams": 2.5},
        {"num_beams": True},
        {"num_return_sequences": 2},
        {"not_a_setting": 1},
        {"temperature": [1]},
        {"max_new_tokens": {"a": 1}},
        "[]",
        [1],
        {"length_penalty": "long"},
        {"num_beams": 2, "num_beam_groups": 2, "diversity_penalty": 0.0, "do_sample": True},
    ]:
        add(f"generation {str(generation)[:30]}", 400, json={**ok, "generation": generation})
    for body in [
        b"",
        b" ",
        b"{",
        b"{'task': 'vqa'}",
        b"[]",
        b"null",
        b"42",
        b'"vqa"',
        b"\xff\xfe",
        b'{"task": "vqa",}',
    ]:
        add(f"body {body[:10]!r}", 400, content=body, headers={"content-type": "application/json"})
    for content_type in ["text/plain", "application/xml", "image/png", "application/x-www-form-urlencoded", ""]:
        add(
            f"content type {content_type!r}",
            415,
            content=json.dumps(ok).encode(),
            headers={"content-type": content_type},
        )
    add(
        "huge JSON over the limit",
        413,
        content=b'{"task": "vqa", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json"},
    )
    add("multipart without boundary", 400, content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    add("multipart, broken", 400, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zz"})
    add(
        "multipart, options not JSON",
        400,
        files={"image": ("a.png", good_png, "image/png")},
        data={"task": "classification", "options": "{labels: cat}"},
    )
    add(
        "multipart, generation over the limit",
        400,
        files={"image": ("a.png", good_png, "image/png")},
        data={"task": "caption", "generation": '{"num_beams": 64}'},
    )
    add("multipart, image missing", 422, data={"task": "vqa", "question": "q", "x": "1"}, files={"other": ("a", b"1")})
    add(
        "multipart, not an image",
        400,
        files={"image": ("a.png", b"not an image", "image/png")},
        data={"task": "caption"},
    )
    add(
        "multipart, question twice",
        400,
        files=[("image", ("a.png", good_png, "image/png"))],
        data={"task": "vqa", "question": ["a", "b"]},
    )
    return cases


def test_malformed_requests_get_4xx_json_errors(make_app):
    cases = malformed_cases()
    assert len(cases) >= 100
    with TestClient(make_app(max_upload_mb=1, max_pixels=40_000_000)) as client:
        before = rss_mb()
        wrong = []
        for what, post, status in cases:
            answer = client.post("/v1/predict", **post)
            body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
            if (
                answer.status_code != status
                or not isinstance(body, dict)
                or set(body) != {"error"}
                or ("\n" not in body["error"] and "Traceback" in body["error"])
                or "\n" in body["error"]
            ):
                wrong.append(f"{what}: {answer.status_code} {answer.text[:200]}")
        growth = rss_mb() - before
        assert not wrong, "\n".join(wrong)
        # still answering
        good = client.post(
            "/v1/predict", json={"task": "vqa", "image": b64(png_bytes(9)), "question": "what?", "generation": FAST}
        )
        assert good.status_code == 200 and good.json()["task"] == "vqa"
        text = client.get("/metrics").text
    assert growth < 300, f"RSS grew by {growth:.0f} MB"
    assert metric(text, "ofa_errors_total", kind="bad_request") > 50
    assert metric(text, "ofa_errors_total", kind="too_large") >= 4
    assert metric(text, "ofa_errors_total", kind="internal") == 0


def test_unknown_route_and_method_are_json(make_app):
    with TestClient(make_app()) as client:
        assert client.get("/nope").json() == {"error": "Not Found"}
        answer = client.get("/v1/predict")
        assert answer.status_code == 405 and set(answer.json()) == {"error"}


def _slow(seconds, calls=None):
    def factory(model, processor, spec, prompt, options, generation):
        def predict(records):
            if calls is not None:
                calls.append(len(records))
            time.sleep(seconds)
            return [{"id": r["id"], "text": "slow", "prediction": "slow"} for r in records]

        return predict

    return factory


def _post(client, **extra):
    return client.post("/v1/predict", json={"task": "caption", "image": b64(png_bytes()), **extra})


def test_full_queue_answers_503_with_retry_after(make_app):
    async def flood():
        async with async_client(make_app(_slow(1.0), max_batch=1, max_queue=2, max_wait_ms=0)) as client:
            return await asyncio.gather(*(_post(client) for _ in range(8)))

    answers = run_async(flood())
    statuses = sorted(a.status_code for a in answers)
    # Two requests always fit the queue; a third fits only if the worker took the first one before the flood ended.
    assert statuses.count(200) >= 2 and statuses.count(503) >= 1 and set(statuses) == {200, 503}
    for answer in answers:
        if answer.status_code == 503:
            assert int(answer.headers["retry-after"]) >= 1 and "queue is full" in answer.json()["error"]


def test_timeout_answers_504(make_app):
    async def slow():
        async with async_client(make_app(_slow(0.6), timeout_s=0.2)) as client:
            late = await _post(client)
            return late, (await client.get("/metrics")).text

    late, text = run_async(slow())
    assert late.status_code == 504 and "--timeout-s" in late.json()["error"]
    assert metric(text, "ofa_errors_total", kind="timeout") == 1


def test_a_failing_request_does_not_fail_its_batch(make_app):
    def factory(model, processor, spec, prompt, options, generation):
        def predict(records):
            if any(r["question"] == "boom" for r in records):
                raise OFAError("question 'boom' is not allowed")
            return [{"id": r["id"], "text": r["question"], "prediction": r["question"]} for r in records]

        return predict

    async def mixed():
        async with async_client(make_app(factory, max_batch=4, max_wait_ms=200)) as client:
            return await asyncio.gather(
                *(
                    client.post("/v1/predict", json={"task": "vqa", "image": b64(png_bytes()), "question": q})
                    for q in ["a", "boom", "c", "d"]
                )
            )

    answers = run_async(mixed())
    assert [a.status_code for a in answers] == [200, 400, 200, 200]
    assert [a.json().get("prediction") for a in answers] == ["a", None, "c", "d"]
    assert answers[1].json() == {"error": "question 'boom' is not allowed"}


def test_internal_error_is_500_without_traceback(make_app):
    def factory(model, processor, spec, prompt, options, generation):
        def predict(records):
            raise RuntimeError("secret detail\nTraceback (most recent call last)")

        return predict

    with TestClient(make_app(factory), raise_server_exceptions=False) as client:
        answer = _post(client)
    assert answer.status_code == 500 and answer.json() == {"error": "internal error; see the server log"}


def test_shutdown_finishes_queued_requests(make_app):
    calls: list[int] = []

    async def drain():
        app = make_app(_slow(0.1, calls), max_batch=2, max_wait_ms=0)
        async with async_client(app) as client:
            pending = [asyncio.create_task(_post(client)) for _ in range(6)]
            while app.state.batcher.depth + sum(calls) < 6:  # all six queued (batches of 2 take 0.1 s each)
                await asyncio.sleep(0.005)
            assert app.state.batcher.depth >= 2  # still waiting when shutdown begins
            await app.state.batcher.close()  # what the lifespan does at shutdown
            answers = await asyncio.gather(*pending)
            refused = await _post(client)
        return answers, refused

    answers, refused = run_async(drain())
    assert [a.status_code for a in answers] == [200] * 6 and sum(calls) == 6
    assert refused.status_code == 503 and "shutting down" in refused.json()["error"]
