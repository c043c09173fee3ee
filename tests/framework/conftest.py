"""Shared pieces of the framework tests: small inline plugins and the installed example plugin."""

from __future__ import annotations

import importlib
import importlib.metadata
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import attrs
import pytest

from ofa_core.plugin import MetricSpec, NoOptions, PromptTemplate, ReaderSpec, TaskSpec, hookimpl, path_option

REPO = Path(__file__).parents[2]
COUNTING = REPO / "plugins" / "ofa-plugin-counting"


@attrs.frozen
class ListOptions:
    train: str | None = path_option()
    size: int = attrs.field(default=2, validator=attrs.validators.gt(0))


class Counter:
    def __init__(self, options):
        self.count = 0

    def update(self, predictions, references):
        self.count += len(predictions)

    def state(self):
        return {"count": self.count}

    def load_state(self, merged):
        self.count = merged["count"]

    def compute(self):
        return {"count": float(self.count)}


class Toy:
    """An inline plugin registering one of each component."""

    @hookimpl
    def ofa_register_tasks(register):
        register(
            "toy",
            TaskSpec(
                prompts={"en": "toy.en"},
                reader="toy_reader",
                loss="label_smoothed_cross_entropy",
                metrics=("count",),
                generation="caption",
                description="a toy",
            ),
        )

    @hookimpl
    def ofa_register_prompts(register):
        register("toy.en", PromptTemplate("toy.en", "en", " what is {name}?", "{answer}"))

    @hookimpl
    def ofa_register_readers(register):
        register("toy_reader", ReaderSpec(ListOptions, lambda options, split: iter([]), "nothing"))

    @hookimpl
    def ofa_register_metrics(register):
        register("count", MetricSpec(NoOptions, Counter, higher_is_better=True))


@pytest.fixture(scope="session")
def counting_installed() -> None:
    """pip-install the example plugin (editable, no dependencies) into this environment once."""
    try:
        importlib.metadata.distribution("ofa-plugin-counting")
    except importlib.metadata.PackageNotFoundError:
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(COUNTING)]
        if subprocess.run([*command, "--no-build-isolation"], capture_output=True).returncode != 0:
            subprocess.run(command, check=True, capture_output=True)
        site.addsitedir(sysconfig.get_paths()["purelib"])  # runs the new editable-install .pth in this process
        importlib.invalidate_caches()
    importlib.import_module("ofa_plugin_counting")
