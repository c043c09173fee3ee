"""What a run shows: a JSONL log, TensorBoard scalars and text, a tqdm bar on a terminal or progress lines
elsewhere (CI logs, nohup, `> log 2>&1`), all from rank 0 only."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from tqdm.auto import tqdm

PROGRESS_SECONDS = 30.0
"""Without a terminal, a progress line is printed at least this often (besides every `logging_steps`)."""


def _now() -> float:
    """The clock of throughput, ETA and the progress interval (tests replace it)."""
    return time.monotonic()


def duration(seconds: float) -> str:
    """'45s', '3m05s', '2h07m'."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def headline(scores: dict[str, Any]) -> str:
    """'cider=445.90, bleu4=89.50' ('caption/cider=...' in a mixture): the float scores, without per-class keys
    ('class/<label>/f1') or counts."""
    return ", ".join(
        f"{key}={value:.2f}"
        for key, value in scores.items()
        if isinstance(value, float) and key != "dropped" and "/class/" not in f"/{key}"
    )


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
        self.started = _now()

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
        elapsed = max(_now() - self.started, 1e-9)
        tokens = max(totals["sample_size"], 1.0)
        values = {
            "loss": totals["loss_sum"] / tokens,
            "lr": lr,
            "grad_norm": totals["grad_norm"],
            "samples_per_s": totals["nsamples"] / elapsed,
            "tokens_per_s": totals["sample_size"] / elapsed,
            "dropped": totals["num_dropped"],
        }
        values.update({f"{label}/epoch" if label else "epoch": epoch for label, epoch in epochs.items()})
        if "nll_loss" in totals:
            values["nll_loss"] = totals["nll_loss"] / tokens
        if "reward_sum" in totals:  # a loss that rewards candidates (scst): their mean reward
            values["reward"] = totals["reward_sum"] / max(totals["nsentences"], 1.0)
        if "loss_scale" in totals:
            values["loss_scale"] = totals["loss_scale"]
        for label, task in sorted(self.tasks.items()):  # a stable order in logs and progress lines
            values[f"{label}/loss"] = task["loss_sum"] / max(task["sample_size"], 1.0)
            values[f"{label}/samples_per_s"] = task["nsamples"] / elapsed
            values[f"{label}/steps"] = task["steps"]
        return values

    def reset(self) -> None:
        self.totals, self.tasks, self.started = {}, {}, _now()


class Reporter:
    """Writes `log.jsonl` and (with 'tensorboard' in report_to) `runs/` under the output directory.

    Non-main processes get a reporter that writes nothing, so the loop never branches on rank.
    On a terminal, progress is a tqdm bar. Elsewhere (CI logs, nohup, a redirected stderr) the bar is off
    and each train log line, and at least one line every `PROGRESS_SECONDS`, is printed on stderr:
    `ofa: step 120/1000 (12%) loss 2.3456 lr 4.9e-04 38.2 samples/s ETA 3m05s` (plus each task's loss in
    a mixture).
    """

    def __init__(
        self, output_dir: Path, report_to: tuple[str, ...], total_steps: int, start_step: int, active: bool
    ) -> None:
        self.active = active
        self.started = _now()
        terminal = _isatty(sys.stderr)
        self.bar = tqdm(
            total=total_steps, initial=start_step, disable=not active or not terminal, dynamic_ncols=True, desc="train"
        )
        self.lines = active and not terminal
        self.total_steps, self.start_step, self.step = total_steps, start_step, start_step
        self.printed_at = self.started
        self.log_file = None
        self.writer = None
        self.window = LogWindow()
        if not active:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = open(output_dir / "log.jsonl", "ab")  # noqa: SIM115 - appended to until close()
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output_dir / "runs"))

    def log(self, step: int, values: dict[str, Any], prefix: str = "train", tag: str | None = None) -> None:
        """One JSONL line (`"split": prefix`) and one TensorBoard scalar per numeric value (`<tag>/<key>`, the tag
        defaulting to the prefix)."""
        if not self.active:
            return
        record = {"step": step, "split": prefix, "time": round(_now() - self.started, 3), **values}
        self.log_file.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        self.log_file.flush()
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{tag or prefix}/{key}", value, step)
        if prefix == "train" and "loss" in values:
            self.bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)

    def text(self, step: int, tag: str, lines: list[str]) -> None:
        if self.writer is not None and lines:
            self.writer.add_text(tag, "\n\n".join(lines), step)

    def evaluation(self, step: int, scores: dict[str, float], samples: list[str], precision: str = "fp32") -> None:
        """Log an evaluation and show it on stderr: headline scores (per-class keys left to the logs)
        and sample predictions beside their references, so progress is visible without TensorBoard. `precision`,
        what the scores were computed in, is in the log line, and outside fp32 in the TensorBoard tags
        (`eval_tag`) and the stderr line."""
        tag = eval_tag(precision)
        self.log(step, {**scores, "precision": precision}, prefix="eval", tag=tag)
        self.text(step, f"{tag}/predictions", samples)
        if not self.active:
            return
        shown = "" if precision == "fp32" else f" ({precision})"
        tqdm.write(f"ofa: step {step} eval{shown}: {headline(scores)}", file=sys.stderr)
        for line in samples:
            tqdm.write(f"  {line}", file=sys.stderr)

    def advance(self) -> None:
        self.bar.update(1)
        self.step += 1

    def step_done(self, totals: dict[str, float], label: str = "") -> None:
        """Count an optimizer step (of task `label` in a mixture): the bar moves, its totals join the log window."""
        self.advance()
        self.window.add(totals, label)

    def log_window(self, step: int, lr: float, epochs: dict[str, float]) -> None:
        """The train line for the steps since the last one (and its progress line without a terminal);
        the next window starts now."""
        values = self.window.values(lr, epochs)
        self.log(step, values)
        self.print_progress(step, values)
        self.window.reset()

    def heartbeat(self, step: int, lr: float) -> None:
        """Without a terminal: a progress line from the open window when none was printed for `PROGRESS_SECONDS`."""
        if self.lines and self.window.totals and _now() - self.printed_at >= PROGRESS_SECONDS:
            self.print_progress(step, self.window.values(lr, {}))

    def print_progress(self, step: int, values: dict[str, Any]) -> None:
        if not self.lines:
            return
        print(self.progress_line(step, values), file=sys.stderr, flush=True)
        self.printed_at = _now()

    def progress_line(self, step: int, values: dict[str, Any]) -> str:
        """'ofa: step 120/1000 (12%) loss 2.3456 (caption 2.10 vqa 1.20) lr 4.9e-04 38.2 samples/s ETA 3m05s'."""
        total = max(self.total_steps, 1)
        tasks = " ".join(
            f"{key[: -len('/loss')]} {value:.2f}" for key, value in values.items() if key.endswith("/loss")
        )
        done = step - self.start_step
        elapsed = _now() - self.started
        eta = duration((self.total_steps - step) * elapsed / done) if done > 0 and elapsed > 0 else "?"
        return (
            f"ofa: step {step}/{self.total_steps} ({100 * step // total}%) loss {values['loss']:.4f}"
            f"{f' ({tasks})' if tasks else ''} lr {values['lr']:.1e} {values['samples_per_s']:.1f} samples/s ETA {eta}"
        )

    def close(self) -> None:
        self.bar.close()
        if self.log_file is not None:
            self.log_file.close()
        if self.writer is not None:
            self.writer.close()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False


def eval_tag(precision: str) -> str:
    """The TensorBoard section of evaluation scores computed in `precision`: `eval` for fp32, else e.g.
    `eval-bf16-autocast`, so that curves of different precisions are never drawn as one."""
    return "eval" if precision == "fp32" else f"eval-{precision}"


def log_evaluation(
    output_dir: Path, report_to: tuple[str, ...], step: int, scores: dict[str, Any], precision: str, **extra: Any
) -> None:
    """`ofa eval`'s record of its scores, as training writes them: one `"split": "eval"` line appended to
    `log.jsonl` (with the `precision` the scores were computed in and `extra`, e.g. the checkpoint) and, with
    'tensorboard' in `report_to`, one `<eval_tag>/<score>` scalar per numeric score at `step` under `runs/`.
    Call it on rank 0 only."""
    output_dir.mkdir(parents=True, exist_ok=True)
    record = {"step": step, "split": "eval", **scores, "precision": precision, **extra}
    with open(output_dir / "log.jsonl", "ab") as handle:
        handle.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY, default=str) + b"\n")
    if "tensorboard" not in report_to:
        return
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(output_dir / "runs"))
    try:
        for key, value in scores.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(f"{eval_tag(precision)}/{key}", value, step)
    finally:
        writer.close()


_CLASS_KEY = re.compile(r"^(?:([^/]+)/)?class/(.+)/(precision|recall|f1|support)$")


def class_table(scores: dict[str, Any], limit: int = 10) -> list[str]:
    """The per-class scores (`class/<label>/<score>` keys, `<task>/class/...` in a mixture) as aligned lines:
    label, precision, recall, f1, support; the `limit` classes with the most support, then a count of the rest.
    Empty without per-class keys."""
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in scores.items():
        found = _CLASS_KEY.match(key)
        if found and isinstance(value, (int, float)):
            task, label, name = found.groups()
            tables.setdefault(f"{task}/" if task else "", {}).setdefault(label, {})[name] = value
    lines: list[str] = []
    columns = ("precision", "recall", "f1", "support")
    for task, classes in tables.items():
        chosen = sorted(classes.items(), key=lambda item: (-item[1].get("support", 0.0), item[0]))[:limit]
        width = max(len("class"), *(len(label) for label, _ in chosen))
        title = f"{task[:-1]}: " if task else ""
        lines.append(f"{title}{'class':<{width}}  " + "  ".join(f"{name:>9}" for name in columns))
        indent = " " * len(title)
        for label, values in chosen:
            cells = [f"{values.get(name, float('nan')):9.2f}" for name in columns[:3]]
            cells.append(f"{int(values.get('support', 0)):9d}")
            lines.append(f"{indent}{label:<{width}}  " + "  ".join(cells))
        if len(classes) > len(chosen):
            lines.append(f"{indent}... and {len(classes) - len(chosen)} more classes")
    return lines
