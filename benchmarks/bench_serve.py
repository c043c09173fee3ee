"""`ofa serve` under 8 concurrent clients: dynamic batching (`--max-batch 8`) against none (`--max-batch 1`).

Run:  python -m pytest benchmarks/bench_serve.py

The server runs as its own process on the demo model (the `ofa-demo` shape, written by
`python -m ofa_core demo-data` into $OFA_CACHE_DIR/demo if missing); the clients are threads of
this process sending caption requests for the demo's validation photos. Reported: requests/s, p50
and p99 latency per setting, and the throughput ratio of batching to none, measured in one run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

CLIENTS = 8
REQUESTS = 160
RESULTS: dict[int, float] = {}


def _demo_model() -> Path:
    root = Path(os.environ.get("OFA_CACHE_DIR") or "~/.cache/ofa").expanduser() / "demo"
    if not (root / "demo.json").is_file():
        subprocess.run([sys.executable, "-m", "ofa_core", "demo-data"], check=True, capture_output=True)
    return root


def _images(root: Path, count: int) -> list[str]:
    rows = (root / "images.tsv").read_text(encoding="utf-8").splitlines()[:count]
    return [row.split("\t")[1] for row in rows]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(model: Path, max_batch: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ofa_core",
            "serve",
            "--model",
            str(model),
            "--task",
            "caption",
            "--port",
            str(port),
            "--max-batch",
            str(max_batch),
            "--max-wait-ms",
            "20",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def _load(url: str, images: list[str]) -> tuple[float, list[float]]:
    """(seconds for all requests, latency of each) with CLIENTS requests in flight."""

    def one(index: int) -> float:
        started = time.perf_counter()
        response = httpx.post(
            f"{url}/v1/predict", json={"task": "caption", "image": images[index % len(images)]}, timeout=120
        )
        response.raise_for_status()
        return time.perf_counter() - started

    for index in range(CLIENTS):  # warm-up: first requests build the predictor
        one(index)
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        latencies = list(pool.map(one, range(REQUESTS)))
    return time.perf_counter() - started, sorted(latencies)


@pytest.mark.parametrize("max_batch", [1, 8])
def test_dynamic_batching_throughput(benchmark, report, max_batch: int) -> None:
    root = _demo_model()
    images = _images(root, 60)
    process, url = _serve(root / "model", max_batch)
    try:
        seconds, latencies = benchmark.pedantic(_load, args=(url, images), rounds=1, iterations=1)
    finally:
        process.terminate()
        process.wait(timeout=60)
    throughput = REQUESTS / seconds
    RESULTS[max_batch] = throughput
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    report(
        f"serve --max-batch {max_batch}: {throughput:.1f} requests/s, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"({CLIENTS} clients, {REQUESTS} caption requests, demo model, 2 CPU threads)"
    )
    if max_batch == 8 and 1 in RESULTS:
        report(f"serve: dynamic batching {throughput / RESULTS[1]:.2f}x the throughput of --max-batch 1")
