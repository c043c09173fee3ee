"""Building the HTML report of a large split: 5,000 grounding predictions with their photos.

Run:  python -m pytest benchmarks/bench_report.py --benchmark-columns=median,rounds

A grounding_jsonl recipe over 5,000 generated 160 x 120 JPEG photos, a predictions file of 5,000 rows (boxes as
`ofa eval` writes them, without scores: the report scores them), and `ofa report` timed as a whole (reading the
split, scoring every row, sorting, thumbnails, the page): with the default cap of 500 embedded examples, and with all
5,000 embedded. It reports seconds per build and the page's size.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest
from PIL import Image

from ofa_core.cli import main

ROWS = 5000


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench-report")
    rng = random.Random(0)
    lines, predictions = [], []
    for index in range(ROWS):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        Image.new("RGB", (160, 120), colour).save(root / f"{index}.jpg", quality=85)
        x0, y0 = rng.randrange(0, 100), rng.randrange(0, 70)
        reference = [x0, y0, x0 + rng.randrange(20, 60), y0 + rng.randrange(20, 50)]
        lines.append({"id": str(index), "image": f"{index}.jpg", "text": f"block {index}", "box": reference})
        shift = rng.randrange(-20, 20)
        predictions.append({"id": str(index), "prediction": [v + shift for v in reference], "references": [reference]})
    (root / "valid.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    (root / "predictions.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in predictions))
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "grounding", "lang": "en"},
        "data": {"reader": {"name": "grounding_jsonl", "valid": "valid.jsonl"}},
        "training": {"output_dir": "run", "report_to": "none"},
    }
    (root / "recipe.json").write_bytes(orjson.dumps(recipe))
    return root


@pytest.mark.parametrize("limit", [500, ROWS])
def test_report_of_5000_rows(benchmark, report, split, limit):
    out = split / f"report-{limit}.html"
    arguments = ["report", str(split / "predictions.jsonl"), "--recipe", str(split / "recipe.json")]
    arguments += ["--out", str(out), "--report-limit", str(limit)]

    def build() -> float:
        started = time.perf_counter()
        assert main(arguments) == 0
        return time.perf_counter() - started

    seconds = benchmark.pedantic(build, rounds=3, iterations=1)
    report(
        f"ofa report, {ROWS:,} grounding rows, {limit:,} embedded: {seconds:.2f} s (last of 3 rounds), "
        f"page {out.stat().st_size / 2**20:.1f} MiB"
    )
