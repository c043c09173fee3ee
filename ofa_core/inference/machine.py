"""The machine a figure was measured on (CPU model, cores, GPU), so that timings and scores name it."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe() -> dict[str, object]:
    """`{"cpu", "cores", "gpu"}`: cores usable by this process; the GPU's name only when torch is already loaded
    and sees one (so describing the machine never imports torch)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    gpu = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    return {"cpu": cpu_model(), "cores": cores, "gpu": gpu}


def one_line(machine: dict[str, object]) -> str:
    """'Intel(R) Xeon(R) ..., 2 cores' (plus ', GPU <name>' when one was used)."""
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ""
    return f"{machine.get('cpu', 'unknown CPU')}, {machine.get('cores', '?')} cores{gpu}"
