"""A run's curves from its `log.jsonl` as inline SVG: training loss and learning rate, and each evaluation
score over steps, so a run can be read without TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import orjson
from markupsafe import escape

WIDTH, HEIGHT, MARGIN = 340, 170, 46
SKIPPED = {
    "step",
    "split",
    "time",
    "epoch",
    "dropped",
    "precision",
    "examples",
    "checkpoint",
    "eval_split",
    "samples_per_s",
    "tokens_per_s",
    "grad_norm",
    "loss_scale",
}
"""Log keys that are bookkeeping rather than curves a reader compares."""


@attrs.frozen
class Curve:
    """One chart: its title and (step, value) points in step order."""

    title: str
    points: tuple[tuple[float, float], ...]


def read_curves(log: Path) -> list[Curve]:
    """Training `loss` and `lr`, then every numeric evaluation score (per-class scores and throughput left out)."""
    series: dict[str, dict[float, float]] = {}
    for line in log.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line cut by an interrupted run
        split = entry.get("split")
        if split not in ("train", "eval") or not isinstance(entry.get("step"), (int, float)):
            continue
        for key, value in entry.items():
            if (
                key in SKIPPED
                or "/class/" in f"/{key}"
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
            ):
                continue
            if split == "train" and key.split("/")[-1] not in ("loss", "lr", "nll_loss", "reward"):
                continue
            if not math.isfinite(value):
                continue
            series.setdefault(f"{split} {key}", {})[float(entry["step"])] = float(value)
    order = sorted(series, key=lambda name: (not name.startswith("train"), name))
    return [Curve(name, tuple(sorted(series[name].items()))) for name in order]


def _label(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


def svg(curve: Curve) -> str:
    """The curve as a small SVG line chart with its step and value ranges written on the axes."""
    xs = [x for x, _ in curve.points]
    ys = [y for _, y in curve.points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def place(x: float, y: float) -> str:
        return f"{MARGIN + (x - x0) / span_x * inner_w:.1f},{HEIGHT - MARGIN - (y - y0) / span_y * inner_h:.1f}"

    coordinates = " ".join(place(x, y) for x, y in curve.points)
    marks = (
        "".join(
            f'<circle cx="{place(x, y).split(",")[0]}" cy="{place(x, y).split(",")[1]}" r="2.5"/>'
            for x, y in curve.points
        )
        if len(curve.points) <= 30
        else ""
    )
    bottom, right = HEIGHT - MARGIN, WIDTH - MARGIN
    return (
        f'<svg class="curve" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(curve.title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="{MARGIN}" y="16" class="title">{escape(curve.title)}</text>'
        f'<path d="M{MARGIN},{MARGIN} V{bottom} H{right}" class="axis"/>'
        f'<polyline points="{coordinates}" class="line"/>{marks}'
        f'<text x="{MARGIN - 4}" y="{MARGIN + 4}" class="tick" text-anchor="end">{_label(y1)}</text>'
        f'<text x="{MARGIN - 4}" y="{bottom}" class="tick" text-anchor="end">{_label(y0)}</text>'
        f'<text x="{MARGIN}" y="{bottom + 14}" class="tick">{_label(x0)}</text>'
        f'<text x="{right}" y="{bottom + 14}" class="tick" text-anchor="end">step {_label(x1)}</text></svg>'
    )
