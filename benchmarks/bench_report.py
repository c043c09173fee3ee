"""Building the evaluation report of 5,000 captions: per-example CIDEr-D for every row (the split's document
frequencies), then the page with the default 500 worst examples embedded, and with all 5,000.

Run:  python -m pytest benchmarks/bench_report.py --benchmark-columns=median,rounds

The rows are Chinese captions with five references each, the images 256x256 JPEG photos of a shape on a plain
background (distinct bytes per row, so no thumbnail is reused), as `ofa report` builds them after reading the
records. The three parts are timed separately within each round.
"""

from __future__ import annotations

import io
import random
import time

import attrs
import pytest
from PIL import Image, ImageDraw

from ofa_core.plugin._scores import score_rows
from ofa_core.report import build
from ofa_core.testing import registry_with

ROWS = 5000
WORDS = list("红色蓝色绿色黄色的杯子鞋子包帽子盒子放在桌上白色背景上有一个带圆点条纹格子图案")


def _caption(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))


@pytest.fixture(scope="module")
def section() -> build.Section:
    rng = random.Random(0)
    photos = []
    for seed in range(50):  # a product on a plain background, as the demo's photos
        image = Image.new("RGB", (256, 256), (200 - 3 * seed, 210, 190 + seed))
        ImageDraw.Draw(image).ellipse((40 + seed, 60, 200, 220 - seed), fill=(5 * seed, 80, 160))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        photos.append(buffer.getvalue())
    rows, records = [], {}
    for index in range(ROWS):
        key = f"valid-{index:05d}"
        references = [_caption(rng) for _ in range(5)]
        rows.append({"id": key, "prediction": rng.choice([references[0], _caption(rng)]), "references": references})
        records[key] = {"id": key, "image": photos[index % 50] + index.to_bytes(4, "big")}  # distinct bytes
    return build.Section(
        label="",
        task="caption",
        rows=rows,
        records=records,
        prompt="图片描述了什么内容?",
        scores={},
        score_name="caption: cider",
    )


def test_report_of_5000_captions(benchmark, report, section) -> None:
    spec = registry_with(installed=True).metrics.get("caption")
    metrics = [("caption", spec, spec.options(tokenize="zh"))]

    def one_round() -> dict[str, float]:
        rows = [dict(row) for row in section.rows]
        started = time.perf_counter()
        score_rows(metrics, rows)
        scored = time.perf_counter()
        scored_section = attrs.evolve(section, rows=rows)
        page = build.render([scored_section])
        rendered = time.perf_counter()
        everything = build.render([scored_section], limit=ROWS)
        done = time.perf_counter()
        assert page.count("<article ") == build.DEFAULT_LIMIT and everything.count("<article ") == ROWS
        return {
            "score": scored - started,
            "page": rendered - scored,
            "all": done - rendered,
            "mb": len(page.encode()) / 1e6,
        }

    timings = benchmark.pedantic(one_round, rounds=3, iterations=1)
    line = (
        f"report of {ROWS} captions: per-example CIDEr-D {timings['score']:.2f} s, page of the {build.DEFAULT_LIMIT} "
        f"worst {timings['page']:.2f} s ({timings['mb']:.1f} MB), page of all {ROWS} {timings['all']:.2f} s "
        f"(last round; median total {benchmark.stats.stats.median:.2f} s)"
    )
    benchmark.extra_info["summary"] = line
    report(line)
