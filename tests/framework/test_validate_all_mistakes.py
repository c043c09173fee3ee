"""A recipe with several mistakes gets all of them at once: one line each with its JSON path and fix, exit 2."""

from __future__ import annotations

import orjson
import pytest

from ofa_core.recipe import load
from ofa_core.recipe.problems import RecipeProblems

from .test_validate_preflight import model, recipe, validate  # noqa: F401 (fixtures)


def broken(recipe: dict) -> dict:
    """Mistakes of every stage: keys and types, two bad values in one object, a missing file, the labels against
    the model's vocabulary, freezing against the model's weights."""
    recipe["trainig"] = {}
    recipe["training"].update(learning_rate=-1, warmup_ratio=2)
    recipe["data"]["max_source_length"] = "long"
    recipe["task"]["options"]["labels"] = ["猪", "羊"]
    recipe["data"]["reader"]["valid"] = "data/absent.jsonl"
    recipe["training"]["freeze_patterns"] = ["model.nothing.*"]
    return recipe


EXPECTED = [
    "trainig: unknown key (did you mean 'training'?)",
    "training.learning_rate: 'learning_rate' must be >= 0",
    "training.warmup_ratio: warmup_ratio must lie in [0, 1), got 2.0",
    "data.max_source_length: expected integer, got string 'long'",
    "data.reader.valid: ",
    "task.options: closed set: labels '猪' and '羊' both become [UNK]",
    "training.freeze_patterns: 'model.nothing.*' matches no parameter",
]


@pytest.mark.parametrize("verb", [("recipe", "validate"), ("run", "--dry-run"), ("run",)])
def test_every_mistake_is_listed_one_line_each(verb, recipe, tmp_path, capsys):
    code, out, lines = validate(tmp_path, broken(recipe), capsys, *verb)
    assert code == 2 and out == ""
    assert len(lines) == len(EXPECTED), lines
    for expected in EXPECTED:
        assert sum(line.startswith(f"error: {tmp_path / 'recipe.json'}: {expected}") for line in lines) == 1, (
            expected,
            lines,
        )


def test_a_bad_value_is_reported_and_its_default_used_so_later_checks_still_run(recipe, tmp_path, capsys):
    recipe["training"]["learning_rate"] = -1
    recipe["training"]["eval_strategy"] = "step"
    del recipe["data"]["reader"]["valid"]
    code, _, lines = validate(tmp_path, recipe, capsys)
    assert code == 2 and [line.split(": ", 2)[2].split(":")[0] for line in lines] == [
        "training.eval_strategy",
        "training.learning_rate",
    ]  # its default, "no", reads no valid split
    del recipe["training"]["eval_strategy"]
    code, _, lines = validate(tmp_path, recipe, capsys)
    assert [line.split(": ", 2)[2].split(":")[0] for line in lines] == ["training.learning_rate"]


def test_a_wrong_component_does_not_hide_the_checks_of_the_rest_of_its_task(recipe, tmp_path, capsys):
    recipe["metrics"] = ["acuracy"]
    recipe["task"]["options"]["labels"] = ["猪", "羊"]
    recipe["data"]["reader"]["train"] = "data/valid.jsonl"
    (tmp_path / "data" / "valid.jsonl").write_text("")
    code, _, lines = validate(tmp_path, recipe, capsys)
    assert code == 2 and [line.split(": ", 2)[2].split(":")[0] for line in lines] == [
        "metrics[0]",
        "task.options",
        "data.reader.train",
        "data.reader.valid",
    ], lines


def test_load_raises_them_together_and_names_where_a_value_came_from(recipe, tmp_path):
    path = tmp_path / "recipe.json"
    path.write_bytes(orjson.dumps({**recipe, "trainig": {}}))
    with pytest.raises(RecipeProblems) as raised:
        load(path, ['training.seed="one"', "training.max_steps=1.5"])
    problems = [str(problem) for problem in raised.value.problems]
    assert problems == [
        f"{path}: trainig: unknown key (did you mean 'training'?)",
        f"{path}: training.max_steps: expected integer, got number 1.5 (value from --set)",
        f"{path}: training.seed: expected integer, got string 'one' (value from --set)",
    ]
    assert str(raised.value) == "; ".join(problems) and "\n" not in str(raised.value)


def test_a_single_mistake_is_raised_as_itself(recipe, tmp_path):
    path = tmp_path / "recipe.json"
    path.write_bytes(orjson.dumps({**recipe, "model": {"checkpoint": "absent"}}))
    with pytest.raises(Exception) as raised:
        load(path)
    assert type(raised.value).__name__ == "MissingRecipePath" and "model.checkpoint" in str(raised.value)
