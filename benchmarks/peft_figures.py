"""Parameter-efficient tuning against full fine-tuning on the demo (docs/peft.md): per method and seed, trainable
parameters, checkpoint size, peak memory, training samples/s and the final metric.

Run:  python benchmarks/peft_figures.py --tasks vqa caption --methods full lora bitfit --seeds 0 1 2 --steps 200

Each run is `python -m ofa_core run` in its own process (peak memory: that process's maximum resident set), from
the same start: VQA from the demo caption model (runs/demo_caption, as recipes/demo_vqa.json), captioning from a
caption model trained `--caption-start-steps` steps by recipes/demo_caption.json (written once under `--work`).
A method's settings and learning rate are those of recipes/demo_vqa_<method>.json; `full` is the plain recipe.
Every run trains `--steps` steps and is evaluated once, at its end. Results go to `--work`/results.jsonl (one line a
run) and a Markdown table of means and spreads over the seeds on stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
TRAINER_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json")
HEADLINE = {"vqa": "vqa_acc", "caption": "cider"}


def method_settings(method: str) -> list[str]:
    """`--set` flags of a method: its demo recipe's peft section and learning rate."""
    if method == "full":
        return []
    recipe = orjson.loads((RECIPES / f"demo_vqa_{method}.json").read_bytes())
    return [
        "--set",
        f"peft={orjson.dumps(recipe['peft']).decode()}",
        "--set",
        f"training.learning_rate={recipe['training']['learning_rate']}",
    ]


def run(recipe: Path, output: Path, flags: list[str], threads: int) -> tuple[dict, int]:
    """Train in a child process; (its summary, its peak resident memory in bytes)."""
    command = [
        sys.executable,
        "-m",
        "ofa_core",
        "run",
        str(recipe),
        "--set",
        f"output_dir={output}",
        "--set",
        "training.resume_from_checkpoint=null",
        "--set",
        "training.report_to=none",
        *flags,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed (status {status})")
    return orjson.loads(stdout), usage.ru_maxrss * 1024


def checkpoint_bytes(checkpoint: Path) -> int:
    """The model files of a checkpoint: everything but the optimizer, scheduler, RNG and trainer state."""
    return sum(
        p.stat().st_size
        for p in checkpoint.iterdir()
        if p.name not in TRAINER_FILES and not p.name.startswith("rng_state_")
    )


def measure(task: str, method: str, seed: int, steps: int, start: Path | None, work: Path, threads: int) -> dict:
    recipe = RECIPES / ("demo_vqa.json" if task == "vqa" else "demo_caption.json")
    flags = [
        *method_settings(method),
        "--set",
        f"training.seed={seed}",
        "--set",
        f"training.max_steps={steps}",
        "--set",
        f"training.eval_steps={steps}",
        "--set",
        f"training.save_steps={steps}",
        "--set",
        f"training.warmup_steps={max(steps // 20, 1)}",
    ]
    if start is not None:
        flags += ["--set", f"model.checkpoint={start}"]
    output = work / f"{task}-{method}-{seed}"
    summary, peak = run(recipe, output, flags, threads)
    phases = summary["seconds_by_phase"]
    training_seconds = sum(seconds for phase, seconds in phases.items() if phase not in ("evaluation", "checkpoints"))
    batch = orjson.loads(recipe.read_bytes())["training"]["per_device_train_batch_size"]
    checkpoint = Path(summary["final_eval"]["checkpoint"])
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "steps": steps,
        "trainable": summary["trainable_parameters"],
        "total": summary["trainable_parameters"] + summary["frozen_parameters"],
        "checkpoint_bytes": checkpoint_bytes(checkpoint),
        "peak_rss_bytes": peak,
        "samples_per_s": steps * batch / training_seconds,
        "metric": summary["final_eval"][HEADLINE[task]],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| task | method | trainable (share) | checkpoint | peak memory | samples/s | metric (mean ± sd, seeds) |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(row["task"], row["method"]) for row in rows}, key=lambda k: (k[0], k[1] != "full", k[1]))
    for task, method in keys:
        group = [row for row in rows if (row["task"], row["method"]) == (task, method)]
        metrics = [row["metric"] for row in group]
        spread = statistics.stdev(metrics) if len(metrics) > 1 else 0.0
        first = group[0]
        lines.append(
            f"| {task} | {method} | {first['trainable']:,} ({100 * first['trainable'] / first['total']:.2f}%) | "
            f"{statistics.mean(r['checkpoint_bytes'] for r in group) / 2**20:.2f} MiB | "
            f"{statistics.mean(r['peak_rss_bytes'] for r in group) / 2**20:.0f} MiB | "
            f"{statistics.mean(r['samples_per_s'] for r in group):.1f} | "
            f"{HEADLINE[task]} {statistics.mean(metrics):.1f} ± {spread:.1f} ({len(group)}) |"
        )
    return "\n".join(lines)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=("vqa", "caption"), default=["vqa", "caption"])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["full", "lora", "bitfit"],
        choices=("full", "lora", "bitfit", "prefix", "prompt", "adapter"),
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=200, help="training steps of every run")
    parser.add_argument(
        "--caption-start-steps",
        type=int,
        default=150,
        help="steps of demo_caption.json that make the captioning runs' common start",
    )
    parser.add_argument("--threads", type=int, default=2, help="OMP threads of each run")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "peft_figures")
    args = parser.parse_args()
    args.work = args.work.resolve()  # a recipe resolves relative paths against its own folder
    return args


def caption_start(args: argparse.Namespace) -> Path:
    """The captioning runs' common start: `demo_caption.json` for `--caption-start-steps`, trained once."""
    start_dir = args.work / f"caption-start-{args.caption_start_steps}"
    if not start_dir.is_dir():
        steps = args.caption_start_steps
        overrides = [f"training.max_steps={steps}", "training.eval_strategy=no", f"training.save_steps={steps}"]
        run(
            RECIPES / "demo_caption.json", start_dir, [f for value in overrides for f in ("--set", value)], args.threads
        )
    return start_dir


def main() -> None:
    args = parse_arguments()
    results = args.work / "results.jsonl"
    args.work.mkdir(parents=True, exist_ok=True)
    done = [orjson.loads(line) for line in results.read_bytes().splitlines()] if results.exists() else []
    start = caption_start(args) if "caption" in args.tasks else None
    for seed in args.seeds:
        for task in args.tasks:
            for method in args.methods:
                key = (task, method, seed, args.steps)
                if any((row["task"], row["method"], row["seed"], row["steps"]) == key for row in done):
                    continue
                row = measure(
                    task, method, seed, args.steps, start if task == "caption" else None, args.work, args.threads
                )
                done.append(row)
                with results.open("ab") as handle:
                    handle.write(orjson.dumps(row) + b"\n")
                print(orjson.dumps(row).decode(), file=sys.stderr, flush=True)
    shown = [row for row in done if row["steps"] == args.steps and row["task"] in args.tasks]
    print(table([row for row in shown if row["method"] in args.methods]))


if __name__ == "__main__":
    main()
