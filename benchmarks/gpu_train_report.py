"""One training run of benchmarks/gpu_check.sh in figures, from its `log.jsonl`: throughput, loss, loss scale.

Exits 1 when the run did not train: a loss that is not finite, or did not fall; with fp16, no loss scale logged
(the GradScaler was not used).

    python benchmarks/gpu_train_report.py RUN_DIR PRECISION
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import orjson


def report(run_dir: Path, precision: str) -> list[str]:
    """Print the run's figures; return what is wrong with it."""
    rows = [orjson.loads(line) for line in (run_dir / "log.jsonl").read_bytes().splitlines() if line.strip()]
    train = [row for row in rows if row.get("split") == "train"]
    if not train:
        return [f"{run_dir}/log.jsonl has no training line"]
    steady = train[1:] or train  # the first window includes start-up
    samples = statistics.median(row["samples_per_s"] for row in steady)
    tokens = statistics.median(row["tokens_per_s"] for row in steady)
    first, last = train[0]["loss"], train[-1]["loss"]
    scale = train[-1].get("loss_scale")
    print(
        f"train {precision}: {train[-1]['step']} steps in {train[-1]['time']:.1f} s; {samples:.0f} samples/s, "
        f"{tokens:.0f} target tokens/s (median of {len(steady)} logging windows); loss {first:.3f} -> {last:.3f}"
        + (f"; loss scale {scale:g}" if scale is not None else "")
    )
    problems = []
    if not all(math.isfinite(row["loss"]) for row in train):
        problems.append(f"{precision}: a training loss is not finite")
    elif len(train) > 1 and not last < first:
        problems.append(f"{precision}: the loss did not fall ({first:.3f} -> {last:.3f})")
    if precision == "fp16" and scale is None:
        problems.append("fp16: no loss_scale in log.jsonl, so no GradScaler ran")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("precision", choices=("no", "bf16", "fp16"))
    args = parser.parse_args()
    problems = report(args.run_dir, args.precision)
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
