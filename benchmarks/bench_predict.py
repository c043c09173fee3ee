"""`ofa predict` on a folder of 200 demo photos: batch 1, batch 8, and 2 processes under torchrun (batch 8 each).

Run:  python -m pytest benchmarks/bench_predict.py

Each setting runs as a fresh command, as a user starts it; reported are the wall time of the whole
command and the decoding throughput `predict` prints (model loading excluded), on the demo model
(`ofa-demo` shape, caption task). On a CPU the two processes share its cores (torchrun gives each one
thread); on GPUs each process gets its own device.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_serve import _demo_model, _images

COUNT = 200
SETTINGS = {
    "batch 1": ["--batch-size", "1"],
    "batch 8": ["--batch-size", "8"],
    "2 processes, batch 8": ["--batch-size", "8"],
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = _demo_model()
    out = tmp_path_factory.mktemp("photos")
    for index, image in enumerate(_images(root, COUNT)):
        (out / f"{index:03d}.jpg").write_bytes(base64.b64decode(image))
    return out


@pytest.mark.parametrize("name", list(SETTINGS))
def test_predict_throughput(benchmark, report, folder: Path, tmp_path: Path, name: str) -> None:
    model = _demo_model() / "model"
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        if "processes" in name
        else [sys.executable]
    )
    command = [
        *launcher,
        "-m",
        "ofa_core",
        "predict",
        "--model",
        str(model),
        "--task",
        "caption",
        str(folder),
        "--output",
        str(tmp_path / "out.jsonl"),
        *SETTINGS[name],
    ]

    def run() -> tuple[float, str]:
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        return time.perf_counter() - started, result.stderr

    seconds, stderr = benchmark.pedantic(run, rounds=1, iterations=1)
    rate = re.search(r"\(([\d.]+) images/s, model loading excluded\)", stderr)
    assert sum(1 for _ in Path(tmp_path / "out.jsonl").read_text().splitlines()) == COUNT
    report(
        f"predict {name}: {COUNT} photos in {seconds:.1f} s wall; decoding {rate.group(1) if rate else '?'} images/s"
    )
