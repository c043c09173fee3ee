"""Recipes: every error is one line naming the file, the JSON path and the fix; provenance; schema."""

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from ofa_core import OFAError
from ofa_core.recipe import load, resolve
from ofa_core.recipe.docs import json_schema
from ofa_core.recipe.show import resolved_values
from ofa_core.testing import registry_with

from .conftest import Toy

RECIPES = Path(__file__).parents[2] / "recipes"


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data))
    return path


@pytest.fixture
def recipe(tmp_path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("")
    write(tmp_path / "base.json", {"model": {"checkpoint": "model"}, "training": {"learning_rate": 1e-4, "seed": 1}})
    return write(
        tmp_path / "recipe.json",
        {
            "extends": "base.json",
            "name": "toy_run",
            "task": "toy",
            "data": {"reader": {"name": "toy_reader", "train": "data/train.txt"}},
            "training": {"seed": 7},
        },
    )


def error_of(path, overrides=()) -> str:
    with pytest.raises(OFAError) as error:
        load(path, overrides)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_extends_set_and_provenance(recipe, tmp_path):
    loaded = load(recipe, ["training.max_steps=2", "data.max_source_length=40"])
    values = resolved_values(loaded)
    assert values["model.checkpoint"] == (str(tmp_path / "model"), f"parent {tmp_path / 'base.json'}")
    assert values["training.learning_rate"] == (1e-4, f"parent {tmp_path / 'base.json'}")
    assert values["training.seed"] == (7, "this file")
    assert values["training.max_steps"] == (2, "--set")
    assert values["data.max_source_length"] == (40, "--set")
    assert values["data.max_target_length"] == (32, "default")
    assert values["task.name"] == ("toy", "this file")
    assert loaded.training.output_dir == str(tmp_path / "runs" / "toy_run")  # relative to the recipe


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"traning": {}}, "recipe.json: traning: unknown key (did you mean 'training'?)"),
        (
            {"training": {"learnig_rate": 1}},
            "recipe.json: training.learnig_rate: unknown key (did you mean 'learning_rate'?)",
        ),
        ({"training": {"max_steps": "10"}}, "recipe.json: training.max_steps: expected integer, got string '10'"),
        (
            {"training": {"lr_scheduler_type": "cosin"}},
            "training.lr_scheduler_type: 'cosin' is not one of 'linear', 'cosine', 'constant', 'polynomial' "
            "(did you mean 'cosine'?)",
        ),
        ({"data": {"max_source_length": 1.5}}, "recipe.json: data.max_source_length: expected integer, got number 1.5"),
        ({"task": {"nme": "toy"}}, "recipe.json: task.nme: unknown key (did you mean 'name'?)"),
        ({"model": {"checkpoint": "nowhere"}}, "recipe.json: model.checkpoint: "),
        (
            {"training": {"warmup_ratio": 2}},
            "recipe.json: training.warmup_ratio: warmup_ratio must lie in [0, 1), got 2.0",
        ),
        ({"extends": "missing.json"}, "recipe.json: extends: "),
        (
            {"training": {"report_to": "wandb"}},
            "recipe.json: training.report_to: report_to must be 'tensorboard', 'all', 'none' or a list",
        ),
        (
            {"training": {"report_to": 1}},
            "recipe.json: training.report_to: expected string or list or null, got integer 1",
        ),
    ],
)
def test_one_line_errors_name_file_field_and_fix(recipe, change, expected):
    data = orjson.loads(recipe.read_bytes())
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    write(recipe, data)
    message = error_of(recipe)
    assert expected in message
    if "checkpoint" in expected:
        assert "nowhere not found (relative paths are resolved against" in message
    if "extends" in expected:
        assert "missing.json not found; paths are relative to" in message


def test_set_errors_say_the_value_came_from_set(recipe):
    assert error_of(recipe, ["training.seed=abc"]).endswith(
        "training.seed: expected integer, got string 'abc' (value from --set)"
    )
    assert "expected KEY.PATH=VALUE" in error_of(recipe, ["training.seed"])


def test_missing_recipe_and_bad_json(tmp_path):
    assert "nope.json: recipe not found" in error_of(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    assert "bad.json: not valid JSON" in error_of(tmp_path / "bad.json")
    write(tmp_path / "a.json", {"extends": "b.json"})
    write(tmp_path / "b.json", {"extends": "a.json"})
    assert "extends: cycle through" in error_of(tmp_path / "a.json")


def test_resolve_components_and_their_options(recipe, tmp_path):
    registry = registry_with(Toy, installed=True)
    resolved = resolve(load(recipe), registry)
    assert resolved.prompt.source == " what is {name}?"
    assert resolved.reader_options.train == str(tmp_path / "data" / "train.txt")
    assert resolved.loss_options.label_smoothing == 0.1
    assert [name for name, _, _ in resolved.metrics] == ["count"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (['task.name="tyo"'], "recipe.json: task.name: unknown task 'tyo' (did you mean 'toy'?"),
        (
            ['data.reader.name="toy_raeder"'],
            "recipe.json: data.reader: unknown reader 'toy_raeder' (did you mean 'toy_reader'?",
        ),
        (["data.reader.sise=3"], "recipe.json: data.reader.sise: unknown key (did you mean 'size'?)"),
        (["data.reader.size=0"], "recipe.json: data.reader.size: 'size' must be > 0: 0"),
        (['data.reader.train="data/none.txt"'], "recipe.json: data.reader.train: "),
        (
            ['metrics=[{"name": "count", "x": 1}]'],
            "recipe.json: metrics[0].x: unknown key (this component takes no options)",
        ),
        (
            ['generation="captoin"'],
            "recipe.json: generation: unknown official search 'captoin' (did you mean 'caption'?",
        ),
        (['task.lang="zh"'], "recipe.json: task.lang: task 'toy' has no 'zh' prompt"),
    ],
)
def test_component_errors(recipe, overrides, expected):
    registry = registry_with(Toy, installed=True)
    with pytest.raises(OFAError) as error:
        resolve(load(recipe, overrides), registry)
    assert expected in str(error.value)


def test_schema_is_current_and_validates_every_recipe():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    committed = json.loads((RECIPES / "recipe.schema.json").read_text())
    assert committed == schema, (
        "recipes/recipe.schema.json is stale: run `ofa recipe schema > recipes/recipe.schema.json`"
    )
    recipes = [p for p in RECIPES.rglob("*.json") if not p.name.endswith(".schema.json")]
    assert recipes
    partial = {k: v for k, v in schema.items() if k != "required"}  # base files others extend
    for path in recipes:
        jsonschema.validate(json.loads(path.read_text()), partial if path.parent.name == "base" else schema)


def test_schema_rejects_unknown_keys():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"task": "x", "model": {"checkpoint": "m"}, "trainig": {}}, json_schema())


@pytest.mark.parametrize(
    ("value", "backends"),
    [
        ("tensorboard", ("tensorboard",)),
        ("none", ()),
        ("all", ("tensorboard",)),
        (["tensorboard"], ("tensorboard",)),
        ([], ()),
    ],
)
def test_report_to_takes_a_string_or_a_list_as_in_transformers(tmp_path, value, backends):
    (tmp_path / "model").mkdir()
    data = {"task": "toy", "model": {"checkpoint": "model"}, "training": {"report_to": value}}
    jsonschema.validate(data, json_schema())
    assert load(write(tmp_path / "recipe.json", data)).training.report_to == backends


def test_report_to_none_from_the_command_line(recipe):
    assert load(recipe, ["training.report_to=none"]).training.report_to == ()
