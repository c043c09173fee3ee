"""What the tasks' training tests share: a short, seeded, constant-rate training block, an official recipe pointed at
generated files, and `ofa eval` of the starting model and of the run's last checkpoint."""

from __future__ import annotations

from pathlib import Path

import orjson

from ofa_core.cli import main


def quick_training(learning_rate: float, **changes) -> dict:
    """A recipe's `training` for a test run: small batches, constant rate, seed 0, no reports, one final checkpoint;
    `changes` replace or add keys."""
    return {
        "per_device_train_batch_size": 6,
        "per_device_eval_batch_size": 3,
        "learning_rate": learning_rate,
        "lr_scheduler_type": "constant",
        "logging_steps": 10,
        "save_steps": 1000,
        "report_to": [],
        "seed": 0,
        **changes,
    }


def official_recipe(official: dict, task_options: dict, learning_rate: float) -> dict:
    """An official recipe on the tiny model at `model`, reading train.tsv and valid.tsv (also as the test split)."""
    reader = {**official["data"]["reader"], "train": "train.tsv", "valid": "valid.tsv", "test": "valid.tsv"}
    return {
        "model": {"checkpoint": "model"},
        "task": {**official["task"], "options": {**official["task"].get("options", {}), **task_options}},
        "data": {**official["data"], "reader": reader},
        "loss": official["loss"],
        "metrics": official["metrics"],
        "training": quick_training(learning_rate),
    }


def untrained_and_trained(directory: Path, capsys) -> tuple[dict, dict]:
    """`ofa eval` results of the recipe at `directory`: the starting model, then the run's last checkpoint."""
    results = []
    checkpoint = max((directory / "run").glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    for model in (directory / "model", checkpoint):
        assert main(["eval", str(directory / "recipe.json"), "--checkpoint", str(model)]) == 0
        results.append(orjson.loads(capsys.readouterr().out))
    return results[0], results[1]
