"""What a run shows: a JSONL log, TensorBoard scalars and text, a tqdm bar, all from rank 0 only."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
from tqdm.auto import tqdm


def headline(scores: dict[str, Any]) -> str:
    """'cider=445.90, bleu4=89.50' ('caption/cider=...' in a mixture): the float scores, without per-class keys
    ('class/<label>/f1') or counts."""
    return ", ".join(f"{key}={value:.2f}" for key, value in scores.items()
                     if isinstance(value, float) and key != "dropped" and "/class/" not in f"/{key}")


class LogWindow:
    """The step totals summed since the last train log line, and the values that line shows.

    Totals are what `Trainer._step` returns: `loss_sum`, `sample_size` (tokens), `nsamples`,
    `num_dropped` and the loss's own logs add up; `grad_norm` and `loss_scale` are per step, the
    window keeps the latest. In a mixture each step also counts toward its task's totals, shown as
    `<label>/loss`, `<label>/samples_per_s` and `<label>/steps`.
    """

    LATEST = ("grad_norm", "loss_scale")
    PER_TASK = ("loss_sum", "sample_size", "nsamples")

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.tasks: dict[str, dict[str, float]] = {}
        self.started = time.monotonic()

    def add(self, totals: dict[str, float], label: str = "") -> None:
        for key, value in totals.items():
            self.totals[key] = value if key in self.LATEST else self.totals.get(key, 0.0) + value
        if label:
            task = self.tasks.setdefault(label, dict.fromkeys((*self.PER_TASK, "steps"), 0.0))
            for key in self.PER_TASK:
                task[key] += totals.get(key, 0.0)
            task["steps"] += 1

    def values(self, lr: float, epochs: dict[str, float]) -> dict[str, float]:
        """Per-token losses, throughput since the window opened, `lr`, and each task's epoch (`epoch` alone
        for a single task, `<label>/epoch` in a mixture)."""
        totals = self.totals
        elapsed = max(time.monotonic() - self.started, 1e-9)
        tokens = max(totals["sample_size"], 1.0)
        values = {"loss": totals["loss_sum"] / tokens, "lr": lr, "grad_norm": totals["grad_norm"],
                  "samples_per_s": totals["nsamples"] / elapsed, "tokens_per_s": totals["sample_size"] / elapsed,
                  "dropped": totals["num_dropped"]}
        values.update({f"{label}/epoch" if label else "epoch": epoch for label, epoch in epochs.items()})
        if "nll_loss" in totals:
            values["nll_loss"] = totals["nll_loss"] / tokens
        if "loss_scale" in totals:
            values["loss_scale"] = totals["loss_scale"]
        for label, task in self.tasks.items():
            values[f"{label}/loss"] = task["loss_sum"] / max(task["sample_size"], 1.0)
            values[f"{label}/samples_per_s"] = task["nsamples"] / elapsed
            values[f"{label}/steps"] = task["steps"]
        return values

    def reset(self) -> None:
        self.totals, self.tasks, self.started = {}, {}, time.monotonic()


class Reporter:
    """Writes `log.jsonl` and (with 'tensorboard' in report_to) `runs/` under the output directory.

    Non-main processes get a reporter that writes nothing, so the loop never branches on rank.
    The bar is disabled when stderr is not a terminal (CI logs stay readable; the JSONL has it all).
    """

    def __init__(self, output_dir: Path, report_to: tuple[str, ...], total_steps: int, start_step: int, active: bool) -> None:
        self.active = active
        self.started = time.monotonic()
        self.bar = tqdm(total=total_steps, initial=start_step, disable=not active or not sys.stderr.isatty(),
                        dynamic_ncols=True, desc="train")
        self.log_file = None
        self.writer = None
        self.window = LogWindow()
        if not active:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = open(output_dir / "log.jsonl", "ab")
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(output_dir / "runs"))

    def log(self, step: int, values: dict[str, Any], prefix: str = "train") -> None:
        """One JSONL line and one TensorBoard scalar per numeric value."""
        if not self.active:
            return
        record = {"step": step, "split": prefix, "time": round(time.monotonic() - self.started, 3), **values}
        self.log_file.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        self.log_file.flush()
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{prefix}/{key}", value, step)
        if prefix == "train" and "loss" in values:
            self.bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)

    def text(self, step: int, tag: str, lines: list[str]) -> None:
        if self.writer is not None and lines:
            self.writer.add_text(tag, "\n\n".join(lines), step)

    def evaluation(self, step: int, scores: dict[str, float], samples: list[str]) -> None:
        """Log an evaluation and show it on stderr: headline scores (per-class keys left to the logs)
        and sample predictions beside their references, so progress is visible without TensorBoard."""
        self.log(step, scores, prefix="eval")
        self.text(step, "eval/predictions", samples)
        if not self.active:
            return
        tqdm.write(f"ofa: step {step} eval: {headline(scores)}", file=sys.stderr)
        for line in samples:
            tqdm.write(f"  {line}", file=sys.stderr)

    def advance(self) -> None:
        self.bar.update(1)

    def step_done(self, totals: dict[str, float], label: str = "") -> None:
        """Count an optimizer step (of task `label` in a mixture): the bar moves, its totals join the log window."""
        self.advance()
        self.window.add(totals, label)

    def log_window(self, step: int, lr: float, epochs: dict[str, float]) -> None:
        """The train line for the steps since the last one; the next window starts now."""
        self.log(step, self.window.values(lr, epochs))
        self.window.reset()

    def close(self) -> None:
        self.bar.close()
        if self.log_file is not None:
            self.log_file.close()
        if self.writer is not None:
            self.writer.close()
