"""The plugin seam: every hook a plugin may implement (pluggy project `ofa_core`).

Each registering hook receives `register(name, spec, *, replace=False)`; the registry binds one
callback per plugin, so each name records the plugin that registered it. Exact signatures are
documented in docs/plugin-hooks.md, which a test keeps in step with this module.
"""

from __future__ import annotations

import argparse
from typing import Any, Protocol

import pluggy

PROJECT = "ofa_core"
"""The pluggy project name, which is also the entry-point group plugins declare."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The callback a registering hook receives."""

    def __call__(self, name: str, spec: Any, *, replace: bool = False) -> None:
        """Add `spec` under `name`; `replace=True` overrides another plugin's entry on purpose."""


@hookspec
def ofa_register_tasks(register: Register) -> None:
    """Register tasks: TaskSpec tying prompts, reader, loss, metrics and generation together."""


@hookspec
def ofa_register_prompts(register: Register) -> None:
    """Register prompt templates (PromptTemplate), by convention named '<task>.<lang>'."""


@hookspec
def ofa_register_readers(register: Register) -> None:
    """Register dataset readers (ReaderSpec) that yield raw records for a split."""


@hookspec
def ofa_register_losses(register: Register) -> None:
    """Register losses (LossSpec) returning LossOutput(loss_sum, sample_size, logs)."""


@hookspec
def ofa_register_metrics(register: Register) -> None:
    """Register metrics (MetricSpec) whose state merges by summation across processes."""


@hookspec
def ofa_register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add CLI verbs with `subparsers.add_parser(...)`; set `run=fn(args) -> int` as a default."""
