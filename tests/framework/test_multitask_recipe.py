"""Multi-task recipes: the form, its errors (with the JSON path of the entry), `recipe show`, and a third-party task
trained in a mixture with a built-in one."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import pytest

from ofa_core import OFAError
from ofa_core.cli import main
from ofa_core.recipe import load, resolve, resolve_tasks
from ofa_core.recipe.docs import json_schema
from ofa_core.recipe.show import resolved_values
from ofa_core.testing import fake_image, registry_with, run_recipe, tiny_checkpoint
from tests.report.pages import assert_complete_and_worst_first, read_sections

from .conftest import Toy

RECIPES = Path(__file__).parents[2] / "recipes"


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data))
    return path


def toy_entry(**changes) -> dict:
    return {"task": "toy", "data": {"reader": {"name": "toy_reader", "train": "train.txt"}}, **changes}


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "train.txt").write_text("")
    return tmp_path


def mixture(folder: Path, **top) -> Path:
    return write(folder / "recipe.json", {"model": {"checkpoint": "model"}, "name": "mix", **top})


def test_a_mixture_resolves_every_task_with_its_own_sections(folder):
    path = mixture(
        folder,
        tasks=[toy_entry(label="a", weight=3), toy_entry(label="b", metrics=[], generation="vqa")],
        mixture={"temperature": 2},
    )
    recipe = load(path)
    tasks = resolve_tasks(recipe, registry_with(Toy, installed=True))
    assert [(t.label, t.weight, t.generation, len(t.metrics)) for t in tasks] == [
        ("a", 3.0, "caption", 1),
        ("b", 1.0, "vqa", 0),
    ]
    assert recipe.spec.mixture.temperature == 2.0 and recipe.training.output_dir == str(folder / "runs" / "mix")
    with pytest.raises(OFAError, match="use resolve_tasks"):
        resolve(recipe, registry_with(Toy, installed=True))
    values = resolved_values(recipe, tasks)
    assert values["tasks[0].weight"] == (3.0, "this file") and values["tasks[1].generation"] == ("vqa", "this file")
    assert values["tasks[0].data.reader.name"] == ("toy_reader", "this file") and "task.name" not in values
    jsonschema.validate(orjson.loads(path.read_bytes()), json_schema())


def test_a_single_task_recipe_resolves_as_one_unlabelled_task(folder):
    path = write(folder / "single.json", {"model": {"checkpoint": "model"}, **toy_entry()})
    (task,) = resolve_tasks(load(path), registry_with(Toy, installed=True))
    assert (task.label, task.weight, task.task_name) == ("", 1.0, "toy")


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"task": "toy", "tasks": [toy_entry()]}, "task: both task and tasks given"),
        ({}, "task: neither task nor tasks given"),
        ({"tasks": []}, "tasks: the list is empty"),
        ({"tasks": [toy_entry(), toy_entry()]}, "tasks[1].label: 'toy' is also the label of tasks[0]"),
        ({"tasks": [toy_entry(label="a/b")]}, "tasks[0].label: 'a/b' contains '/'"),
        (
            {"tasks": [toy_entry()], "loss": "label_smoothed_cross_entropy"},
            "loss: a multi-task recipe sets it per task",
        ),
        ({"tasks": [toy_entry()], "data": {"max_source_length": 10}}, "data: a multi-task recipe sets data per task"),
        ({"tasks": [toy_entry(weight=0)]}, "tasks[0].weight"),
        (
            {"tasks": [toy_entry(label="x"), toy_entry(wieght=2)]},
            "tasks[1].wieght: unknown key (did you mean 'weight'?",
        ),
    ],
)
def test_mixture_mistakes_name_the_json_path(folder, top, message):
    with pytest.raises(OFAError) as error:
        load(mixture(folder, **top))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            toy_entry(data={"reader": {"name": "toy_redaer", "train": "train.txt"}}),
            "tasks[1].data.reader: unknown reader 'toy_redaer' (did you mean 'toy_reader'?",
        ),
        (toy_entry(task={"name": "toy", "lang": "fr"}), "tasks[1].task.lang: task 'toy' has no 'fr' prompt"),
        (toy_entry(data={"reader": {"name": "toy_reader", "train": "missing.txt"}}), "tasks[1].data.reader.train:"),
        (
            toy_entry(generation="captoin"),
            "tasks[1].generation: unknown official search 'captoin' (did you mean 'caption'?",
        ),
        (toy_entry(metrics=["cuont"]), "tasks[1].metrics[0]: unknown metric 'cuont' (did you mean 'count'"),
    ],
)
def test_a_bad_component_names_its_entry(folder, entry, message):
    recipe = load(mixture(folder, tasks=[toy_entry(label="first"), {**entry, "label": "second"}]))
    with pytest.raises(OFAError) as error:
        resolve_tasks(recipe, registry_with(Toy, installed=True))
    assert message in str(error.value)


def test_recipe_show_and_validate_on_the_command_line(folder, capsys):
    path = mixture(folder, tasks=[toy_entry(label="a"), toy_entry(label="b", weight=0.5)])
    plugin_dir = folder / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "toy_plugin.py").write_text("from tests.framework.conftest import Toy\nglobals().update(vars(Toy))\n")
    assert main(["--plugins-dir", str(plugin_dir), "recipe", "validate", str(path)]) == 2
    err = capsys.readouterr().err  # the toy has neither a model nor records: each entry's empty file is named
    assert "tasks[0].data.reader.train:" in err and "tasks[1].data.reader.train:" in err
    assert main(["--plugins-dir", str(plugin_dir), "recipe", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tasks[1].weight" in out and "# task toy (b, weight 0.5)" in out


def test_the_multitask_demo_recipe_is_valid():
    jsonschema.validate(orjson.loads((RECIPES / "demo_multitask.json").read_bytes()), json_schema())


@pytest.fixture
def mixed_data(tmp_path) -> dict:
    """A counting task (the example third-party plugin) and classification (built-in), on the same four images."""
    lines = []
    for index in range(4):
        path = tmp_path / "images" / f"{index}.png"
        path.parent.mkdir(exist_ok=True)
        fake_image(index, (48, 32)).save(path)
        lines.append(
            {"id": str(index), "image": f"images/{index}.png", "object": ["红色", "狗"][index % 2], "count": index}
        )
    (tmp_path / "counting.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    (tmp_path / "labels.txt").write_text("红色\n狗\n", encoding="utf-8")
    (tmp_path / "classes.jsonl").write_bytes(
        b"\n".join(
            orjson.dumps({"id": str(i), "image": f"images/{i}.png", "label": ["红色", "狗"][i % 2]}) for i in range(4)
        )
    )
    tiny_checkpoint(tmp_path / "model")
    return {
        "name": "mixed",
        "model": {"checkpoint": "model"},
        "tasks": [
            {
                "label": "counting",
                "task": {"name": "counting", "lang": "zh", "options": {"max_count": 4}},
                "weight": 1,
                "data": {"reader": {"name": "counting_jsonl", "train": "counting.jsonl", "valid": "counting.jsonl"}},
            },
            {
                "label": "classification",
                "task": {"name": "classification", "lang": "zh", "options": {"labels_file": "labels.txt"}},
                "weight": 1,
                "data": {
                    "reader": {"name": "classification_jsonl", "train": "classes.jsonl", "valid": "classes.jsonl"}
                },
            },
        ],
        "training": {
            "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 2,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "save_steps": 4,
            "eval_strategy": "steps",
            "eval_steps": 4,
            "report_to": [],
            "seed": 0,
        },
    }


def test_a_third_party_task_trains_in_a_mixture_with_a_built_in_one(counting_installed, mixed_data, tmp_path, capsys):
    summary = run_recipe(mixed_data, tmp_path, max_steps=4)
    assert set(summary["epochs"]) == {"counting", "classification"}
    assert {"counting/accuracy", "classification/accuracy"} <= set(summary["eval"])
    rows = [orjson.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_bytes().splitlines()]
    trained = {key.split("/")[0] for row in rows if row["split"] == "train" for key in row if key.endswith("/steps")}
    assert trained == {"counting", "classification"}
    checkpoint = tmp_path / "run" / "checkpoint-4"
    report = tmp_path / "report.html"
    assert main(["eval", str(tmp_path / "recipe.json"), "--checkpoint", str(checkpoint), "--report", str(report)]) == 0
    result = orjson.loads(capsys.readouterr().out)
    assert set(result["predictions"]) == {"counting", "classification"}
    for label, path in result["predictions"].items():
        predictions = [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]
        assert len(predictions) == 4 and {row["task"] for row in predictions} == {label}
    # the report: a section per task, the plugin's too, and the run's curves (its checkpoint was evaluated)
    counting, classification = read_sections(report.read_text())
    assert (counting["title"], classification["title"]) == ("counting", "classification")
    assert all(card["image"] and card["prediction"] and card["references"] for card in counting["cards"])
    assert len(counting["cards"]) == 4 and len(classification["cards"]) == 4
    assert_complete_and_worst_first(classification)
    assert "eval counting/accuracy" in report.read_text() and "train loss" in report.read_text()
