"""Start-up of the light CLI verbs, as a ratio to a bare `python -c "import pluggy, attrs"` in the same run.

Run:  python -m pytest benchmarks/bench_startup.py

`ofa tasks` and `ofa recipe validate` read plugins and recipes only; they must not pay for torch and
transformers (seconds and hundreds of MB each). Each command runs as a fresh process, as a user starts it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

COMMANDS = {
    "import pluggy, attrs": [sys.executable, "-c", "import pluggy, attrs"],
    "ofa tasks": [sys.executable, "-m", "ofa_core", "tasks"],
    "ofa plugins": [sys.executable, "-m", "ofa_core", "plugins"],
    "import ofa_core.plugin": [sys.executable, "-c", "import ofa_core.plugin"],
}
ROUNDS = 7
SECONDS: dict[str, float] = {}


def _median_seconds(command: list[str]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_startup(benchmark, report, name: str) -> None:
    benchmark.pedantic(
        subprocess.run,
        args=(COMMANDS[name],),
        kwargs={"check": True, "capture_output": True},
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )
    seconds = benchmark.stats.stats.median
    SECONDS[name] = seconds
    if name == "import pluggy, attrs":
        report(f"startup: python -c 'import pluggy, attrs' {seconds * 1000:.0f} ms (median of {ROUNDS} processes)")
        return
    baseline = SECONDS.get("import pluggy, attrs") or _median_seconds(COMMANDS["import pluggy, attrs"])
    report(f"startup: {name} {seconds * 1000:.0f} ms = {seconds / baseline:.1f}x python -c 'import pluggy, attrs'")


def test_peak_memory_of_ofa_tasks(report) -> None:
    script = (
        "import resource, sys, json; from ofa_core.cli import main; import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['tasks'])\n"
        "print(json.dumps({'mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "'torch': 'torch' in sys.modules}))"
    )
    result = json.loads(
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    )
    report(f"startup: ofa tasks peak RSS {result['mb']:.0f} MB, torch imported: {result['torch']}")
    assert not result["torch"]
