"""MUGE reader throughput and memory on generated data: RSS must not grow with the TSV.

Run:  python -m pytest benchmarks/bench_reader.py

Each size is read in a fresh process (so peak RSS is that reader's alone): the first pass
builds the byte-offset index, the second reuses it.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import pytest
from PIL import Image

SIZES = (20_000, 40_000)
READ = """
import json, resource, sys, time
from ofa_tasks.caption.readers import MugeOptions, read_muge
options = MugeOptions(folder=sys.argv[1])
start = time.perf_counter()
rows = sum(1 for _ in read_muge(options, "valid"))
seconds = time.perf_counter() - start
peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb}))
"""


def make_muge(folder, count: int):
    images = []
    for shade in range(8):
        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), (shade * 30, 80, 160)).save(buffer, format="JPEG", quality=90)
        images.append(base64.b64encode(buffer.getvalue()).decode())
    folder = folder / str(count)
    folder.mkdir()
    tsv, captions = folder / "IC_valid.tsv", folder / "IC_valid.jsonl"
    with tsv.open("w") as rows, captions.open("w") as lines:
        for index in range(count):
            rows.write(f"{index:032x}\t{images[index % 8]}\n")
            lines.write(
                json.dumps({"image_id": f"{index:032x}", "text": [f"第{index}张图片"] * 10}, ensure_ascii=False) + "\n"
            )
    return folder, tsv


def read_in_fresh_process(folder) -> dict:
    output = subprocess.run([sys.executable, "-c", READ, str(folder)], capture_output=True, text=True, check=True)
    return json.loads(output.stdout)


@pytest.mark.parametrize("count", SIZES)
def test_muge_reader_rows_per_second_and_peak_rss(tmp_path, report, count):
    folder, tsv = make_muge(tmp_path, count)
    size_mb = tsv.stat().st_size / 2**20
    first = read_in_fresh_process(folder)
    second = read_in_fresh_process(folder)
    assert first["rows"] == second["rows"] == count
    report(
        f"MUGE reader, {count} images ({size_mb:.0f} MB TSV): index build + read {count / first['seconds']:.0f} "
        f"rows/s, "
        f"cached {count / second['seconds']:.0f} rows/s, peak RSS {second['peak_rss_mb']:.0f} MB"
    )
