"""The files `ofa new-plugin NAME` writes: a working plugin package with an exact-match task.

Placeholders: __NAME__ (task and entry-point name), __MODULE__ (import name), __DIST__ (distribution).
"""

from __future__ import annotations

PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "ofa plugin: the __NAME__ task"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["ofa-framework>=0.1"]

[project.entry-points.ofa_core]
__NAME__ = "__MODULE__"

[tool.setuptools]
py-modules = ["__MODULE__"]
'''

README = '''# __DIST__

An [ofa](https://github.com/) plugin registering the `__NAME__` task.

    pip install -e .          # registers the plugin through the `ofa_core` entry point
    ofa tasks                 # shows __NAME__ and this plugin
    pytest tests              # runs its tests on a tiny random model

Data: JSON lines with `image` (a path relative to the file), `question` and `answer`.
'''

MODULE = '''"""ofa plugin: the __NAME__ task (answer a question about an image; scored by exact match)."""

from __future__ import annotations

from pathlib import Path

import attrs
import orjson

from ofa_core.plugin.hooks import hookimpl
from ofa_core.plugin.specs import LossOutput, LossSpec, MetricSpec, NoOptions, PromptTemplate, ReaderSpec, TaskSpec, path_option


@attrs.frozen
class ReaderOptions:
    train: str | None = path_option()
    valid: str | None = path_option()
    test: str | None = path_option()


def open_split(options: ReaderOptions, split: str):
    """Yield one record per JSON line: id, image path, question, answer, references."""
    path = Path(getattr(options, split))
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            row = orjson.loads(line)
            yield {"id": str(row.get("id", number)), "image": str(path.parent / row["image"]),
                   "question": row["question"], "answer": row["answer"], "references": [row["answer"]]}


@attrs.frozen
class LossOptions:
    label_smoothing: float = attrs.field(default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])


def build_loss(options: LossOptions):
    def loss(output, batch) -> LossOutput:
        labels = batch["labels"]
        mask = labels.ne(-100)
        log_probs = output.logits.float().log_softmax(-1)
        nll = -log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        per_token = (1 - options.label_smoothing) * nll + options.label_smoothing * -log_probs.mean(-1)
        return LossOutput(per_token.masked_fill(~mask, 0.0).sum(), int(mask.sum()), {})
    return loss


class ExactMatch:
    """Share of predictions equal to a reference; state adds across processes."""

    def __init__(self, options: NoOptions) -> None:
        self.hits, self.count = 0, 0

    def update(self, predictions, references):
        for prediction, refs in zip(predictions, references):
            self.hits += prediction.strip() in [r.strip() for r in refs]
            self.count += 1

    def state(self):
        return {"hits": self.hits, "count": self.count}

    def load_state(self, merged):
        self.hits, self.count = merged["hits"], merged["count"]

    def compute(self):
        return {"exact_match": self.hits / self.count if self.count else 0.0}


@hookimpl
def ofa_register_prompts(register):
    register("__NAME__.en", PromptTemplate(name="__NAME__.en", lang="en", source=" {question}", target="{answer}"))


@hookimpl
def ofa_register_readers(register):
    register("__NAME___jsonl", ReaderSpec(options=ReaderOptions, open=open_split, description="JSONL: image, question, answer"))


@hookimpl
def ofa_register_losses(register):
    register("__NAME___ce", LossSpec(options=LossOptions, build=build_loss, description="label-smoothed cross-entropy"))


@hookimpl
def ofa_register_metrics(register):
    register("__NAME___exact_match", MetricSpec(options=NoOptions, build=ExactMatch, higher_is_better=True))


@hookimpl
def ofa_register_tasks(register):
    register("__NAME__", TaskSpec(prompts={"en": "__NAME__.en"}, reader="__NAME___jsonl", loss="__NAME___ce",
                                  metrics=("__NAME___exact_match",), generation={"num_beams": 1, "max_new_tokens": 8},
                                  description="answer a question about an image"))
'''

TEST = '''"""Tests of the __NAME__ plugin on a tiny random model (seconds on a CPU)."""

import __MODULE__
from ofa_core.plugin.testing import check_metric, registry_with


def test_registers_a_complete_task():
    registry = registry_with(__MODULE__)
    task = registry.tasks.get("__NAME__")
    assert registry.prompts.get(task.prompts["en"]).source == " {question}"
    assert task.reader in registry.readers and task.loss in registry.losses


def test_exact_match_state_merges_by_sum():
    metric_spec = registry_with(__MODULE__).metrics.get("__NAME___exact_match")
    scores = check_metric(metric_spec, ["a cat", "a dog"], [["a cat"], ["a cat"]])
    assert scores == {"exact_match": 0.5}
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "__MODULE__.py": MODULE,
    "tests/test___MODULE__.py": TEST,
}
