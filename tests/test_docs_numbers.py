"""Numbers the README and docs state about recipes (steps, evaluation interval, batch sizes, learning rate,
warm-up, schedule, task weights) are the numbers in those recipes.

Each claim is a pattern that must match its document exactly once, so rewording a sentence makes this fail
instead of leaving the number unchecked.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path

import attrs
import orjson
import pytest

from ofa_core.recipe import TrainingConfig

REPO = Path(__file__).parents[1]


@functools.cache
def recipe(name: str) -> dict:
    return orjson.loads((REPO / "recipes" / f"{name}.json").read_bytes())


def training(name: str) -> TrainingConfig:
    """The recipe's training block with the defaults a run uses for what it leaves out."""
    return TrainingConfig(output_dir="", **recipe(name)["training"])


def steps_and_batch(name: str) -> list:
    return [training(name).max_steps, training(name).per_device_train_batch_size]


@attrs.frozen
class Claim:
    document: str
    pattern: str
    """A regular expression whose groups are the stated numbers (or words); a space matches any whitespace."""
    values: Callable[[], list]
    """What the recipes say, group by group."""


CLAIMS = [
    Claim("README.md", r"an evaluation every (\d+) steps", lambda: [training("demo_caption").eval_interval]),
    Claim(
        "README.md",
        r"`demo_multitask\.json` \(all three tasks in one model, (\d+) steps",
        lambda: [training("demo_multitask").max_steps],
    ),
    Claim(
        "README.md",
        r"batch (\d+), lr ([\d.e-]+), (\d+) warm-up steps, (\w+) schedule, (\d+) epochs, evaluation with "
        r"beam search and no-repeat (\d+)",
        lambda: [
            training("muge_caption").per_device_train_batch_size,
            training("muge_caption").learning_rate,
            training("muge_caption").warmup_steps,
            training("muge_caption").lr_scheduler_type,
            training("muge_caption").num_train_epochs,
            recipe("muge_caption")["generation"]["no_repeat_ngram_size"],
        ],
    ),
    Claim(
        "docs/demo.md",
        r"`demo_caption\.json` \(([\d,]+) steps of (\d+) captions",
        lambda: steps_and_batch("demo_caption"),
    ),
    Claim("docs/demo.md", r"`demo_vqa\.json` \(([\d,]+) steps of (\d+) questions", lambda: steps_and_batch("demo_vqa")),
    Claim(
        "docs/demo.md",
        r"`demo_classification\.json` \(([\d,]+) steps of (\d+) photos",
        lambda: steps_and_batch("demo_classification"),
    ),
    Claim("docs/demo.md", r"`demo_multitask\.json` \(([\d,]+) steps", lambda: [training("demo_multitask").max_steps]),
    Claim(
        "docs/multitask.md",
        r"initial weights for (\d+) steps, then VQA \((\d+) steps\) and classification \((\d+) steps\)",
        lambda: [training(name).max_steps for name in ("demo_caption", "demo_vqa", "demo_classification")],
    ),
    Claim(
        "docs/multitask.md",
        r"one after another, (\d+) steps in all",
        lambda: [sum(training(name).max_steps for name in ("demo_caption", "demo_vqa", "demo_classification"))],
    ),
    Claim(
        "docs/multitask.md",
        r"`demo_multitask\.json`: (\d+) steps from the initial weights with task weights "
        r"([\d.]+) / ([\d.]+) / ([\d.]+)",
        lambda: [
            training("demo_multitask").max_steps,
            *(entry["weight"] for entry in recipe("demo_multitask")["tasks"]),
        ],
    ),
]


def _same(stated: str, value) -> bool:
    if isinstance(value, str):
        return stated == value
    return float(stated.replace(",", "")) == float(value)


@pytest.mark.parametrize("claim", CLAIMS, ids=[f"{claim.document}: {claim.pattern[:40]}" for claim in CLAIMS])
def test_a_number_the_docs_state_is_the_recipes(claim: Claim) -> None:
    text = (REPO / claim.document).read_text(encoding="utf-8")
    found = re.findall(claim.pattern.replace(" ", r"\s+"), text)
    assert len(found) == 1, (
        f"{claim.document}: {claim.pattern!r} matches {len(found)} times; update the claim with the text"
    )
    stated = found[0] if isinstance(found[0], tuple) else (found[0],)
    expected = claim.values()
    assert len(stated) == len(expected)
    wrong = [(text, value) for text, value in zip(stated, expected) if not _same(text, value)]
    assert not wrong, f"{claim.document} states {[t for t, _ in wrong]} where the recipes have {[v for _, v in wrong]}"
