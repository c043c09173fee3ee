"""Re-measure the README's demo table and print it in the README's format, naming the machine and the spread.

Run from the project folder (about 25 minutes per seed on a 2-core CPU; nothing else should run meanwhile):

    python benchmarks/readme_figures.py                      # seeds 0 1 2, the recipes' own budgets
    python benchmarks/readme_figures.py --seeds 0 --max-steps 20 --work /tmp/figures   # a quick try of the script

Each recipe runs as a fresh `python -m ofa_core run recipes/<recipe> --set training.seed=<seed>`, timed from start
to exit; every seed starts from an empty demo folder (`OFA_CACHE_DIR` under `--work`), so the caption run's time
includes generating the data, as the README's does. VQA and classification start from that seed's caption run.
The untrained column scores the generated initial weights (`ofa eval ... --checkpoint <demo>/model`), once. Each
cell is the median over the seeds with the min-max range; the table replaces the README's (its format is tested).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import orjson

REPO = Path(__file__).resolve().parents[1]
HEADER = "| recipe | wall time | result (60 validation photos) | untrained model |\n|---|---|---|---|"


@attrs.frozen
class Row:
    """One line of the table: the recipe, how the README names it, and which final scores it shows."""

    recipe: str
    title: str
    scores: tuple[tuple[str, str], ...]
    """(label, key of the final evaluation), e.g. ('CIDEr-D', 'cider')."""
    starts_from_caption: bool = False
    untrained: str | None = None
    """The key scored on the initial weights; None: 'as above'."""


ROWS = (
    Row(
        "demo_caption.json",
        "`demo_caption.json` (data generation included)",
        (("CIDEr-D", "cider"), ("BLEU-4", "bleu4"), ("ROUGE-L", "rouge_l")),
        untrained="cider",
    ),
    Row(
        "demo_vqa.json",
        "`demo_vqa.json`",
        (("VQA accuracy", "vqa_acc"),),
        starts_from_caption=True,
        untrained="vqa_acc",
    ),
    Row(
        "demo_classification.json",
        "`demo_classification.json`",
        (("accuracy", "accuracy"),),
        starts_from_caption=True,
        untrained="accuracy",
    ),
    Row(
        "demo_multitask.json",
        "`demo_multitask.json` (all three tasks in one model, 1800 steps from the initial "
        "weights; [docs/multitask.md](docs/multitask.md))",
        (("CIDEr-D", "caption/cider"), ("VQA accuracy", "vqa/vqa_acc"), ("accuracy", "classification/accuracy")),
    ),
)

Runner = Callable[[list[str], Mapping[str, str]], dict]
"""`runner(argv after 'python -m ofa_core', environment)` -> the command's JSON result."""


def run_command(argv: list[str], environ: Mapping[str, str]) -> dict:
    """Run `python -m ofa_core ARGV` in the project folder; its stdout is one JSON document."""
    done = subprocess.run(
        [sys.executable, "-m", "ofa_core", *argv], cwd=REPO, env=dict(environ), stdout=subprocess.PIPE, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"python -m ofa_core {' '.join(argv)} failed with exit status {done.returncode}")
    return orjson.loads(done.stdout)


def _sets(**values: object) -> list[str]:
    return [part for key, value in values.items() for part in ("--set", f"{key}={orjson.dumps(value).decode()}")]


def commands(seed: int, work: Path, max_steps: int | None) -> list[tuple[Row, list[str]]]:
    """The `ofa run` argv of each row for `seed`, writing under `work/seed-<seed>`."""
    base = work / f"seed-{seed}"
    found = []
    for row in ROWS:
        budget = {}
        if max_steps is not None:
            budget = {
                "training.max_steps": max_steps,
                "training.eval_steps": max_steps,
                "training.save_steps": max_steps,
            }
        start = {"model.checkpoint": str(base / "demo_caption")} if row.starts_from_caption else {}
        found.append(
            (
                row,
                [
                    "run",
                    f"recipes/{row.recipe}",
                    *_sets(
                        **{
                            "training.seed": seed,
                            "output_dir": str(base / row.recipe.removesuffix(".json")),
                            **start,
                            **budget,
                        }
                    ),
                ],
            )
        )
    return found


def measure(
    seeds: Sequence[int],
    work: Path,
    max_steps: int | None,
    runner: Runner = run_command,
    clock: Callable[[], float] | None = None,
) -> tuple[dict[str, list[tuple[float, dict]]], dict[str, dict]]:
    """Every row's (seconds, final scores) per seed, and the initial weights' scores per row (with seed 0's demo)."""
    clock = clock or time.monotonic
    results: dict[str, list[tuple[float, dict]]] = {row.recipe: [] for row in ROWS}
    untrained: dict[str, dict] = {}
    for seed in seeds:
        environ = {**os.environ, "OFA_CACHE_DIR": str(work / f"seed-{seed}" / "cache")}
        for row, argv in commands(seed, work, max_steps):
            started = clock()
            summary = runner(argv, environ)
            results[row.recipe].append((clock() - started, summary["final_eval"]))
        if not untrained:
            for row in ROWS:
                if row.untrained is not None:
                    out = work / f"untrained-{row.recipe.removesuffix('.json')}.jsonl"
                    untrained[row.recipe] = runner(
                        [
                            "eval",
                            f"recipes/{row.recipe}",
                            "--checkpoint",
                            str(work / f"seed-{seed}" / "cache" / "demo" / "model"),
                            "--predictions",
                            str(out),
                            "--overwrite",
                            *_sets(output_dir=str(out.with_suffix(""))),
                        ],
                        environ,
                    )
    return results, untrained


def wall_time(seconds: float) -> str:
    """'1 min 16 s', '29 s', as the README writes times."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def spread(values: Sequence[float], show: Callable[[float], str]) -> str:
    """'median (min–max)' ('1 min 10 s (1 min 0 s – 1 min 20 s)' when the values hold spaces); one seed: the value."""
    middle, low, high = show(statistics.median(values)), show(min(values)), show(max(values))
    dash = " – " if " " in low + high else "–"
    return middle if len(values) == 1 else f"{middle} ({low}{dash}{high})"


def table(
    results: Mapping[str, Sequence[tuple[float, dict]]],
    untrained: Mapping[str, dict],
    machine: Mapping[str, object],
    seeds: Sequence[int],
) -> str:
    """The README's demo table with its machine line: every cell the median over the seeds, with min–max."""
    from ofa_core.inference.machine import one_line

    measured = (
        f"Measured on {one_line(machine)} (CPU only, each recipe a fresh `python -m ofa_core run ...`; "
        f"seeds {', '.join(map(str, seeds))}: median (min–max)):"
    )
    lines = [measured, "", HEADER]
    for row in ROWS:
        runs = results[row.recipe]
        seconds = spread([duration for duration, _ in runs], wall_time)
        scores = ", ".join(
            f"{label} {spread([scores[key] for _, scores in runs], lambda v: f'{v:.1f}')}" for label, key in row.scores
        )
        before = f"{untrained[row.recipe][row.untrained]:.1f}" if row.untrained else "as above"
        if row.recipe == "demo_caption.json" and row.untrained:
            before = f"CIDEr-D {before}"
        lines.append(f"| {row.title} | {seconds} | {scores} | {before} |")
    return "\n".join(lines)


def main(
    argv: Sequence[str] | None = None, runner: Runner = run_command, clock: Callable[[], float] | None = None
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    parser.add_argument(
        "--max-steps",
        type=int,
        help="a shorter budget for every recipe (evaluating and saving at "
        "its end), to try the script; the README's figures use the recipes' own budgets",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "runs" / "readme_figures",
        help="where the runs and demo folders go (default: runs/readme_figures)",
    )
    args = parser.parse_args(argv)
    from ofa_core.inference.machine import describe

    results, untrained = measure(args.seeds, args.work.resolve(), args.max_steps, runner, clock)
    print(table(results, untrained, describe(), args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
