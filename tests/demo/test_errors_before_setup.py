"""A mistake in a demo recipe (a typo, a wrong type) is reported before the demo data is generated or any file is
written: one error line, nothing on stdout, the cache folder left as it was."""

from __future__ import annotations

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.demo import writer

from .conftest import RECIPES


def _typo_recipe(tmp_path, name: str = "demo_caption.json"):
    """The demo recipe with `learning_rate` misspelt, in a folder of its own (its output_dir lands there)."""
    recipe = orjson.loads((RECIPES / name).read_bytes())
    recipe["training"]["learnig_rate"] = recipe["training"].pop("learning_rate")
    path = tmp_path / "recipes" / name
    path.parent.mkdir()
    path.write_bytes(orjson.dumps(recipe))
    return path


def _files(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("command", [["recipe", "validate"], ["run"], ["run", "--dry-run"]])
def test_a_typo_is_one_line_before_any_demo_data_or_file(command, tmp_path, cache, monkeypatch, capsys):
    monkeypatch.setattr(writer, "generate", lambda *args, **kwargs: pytest.fail("the demo was generated"))
    recipe = _typo_recipe(tmp_path)
    before = _files(tmp_path)
    assert main([*command, str(recipe)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"error: {recipe}: training.learnig_rate: unknown key (did you mean 'learning_rate'?)"]
    assert _files(cache) == [] and _files(tmp_path) == before


def test_a_wrong_type_given_with_set_is_reported_the_same_way(tmp_path, cache, monkeypatch, capsys):
    """Every path of the multi-task demo lies in the demo folder, so the wrong type is all there is to report."""
    monkeypatch.setattr(writer, "generate", lambda *args, **kwargs: pytest.fail("the demo was generated"))
    assert main(["recipe", "validate", str(RECIPES / "demo_multitask.json"), "--set", 'training.max_steps="many"']) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1 and "training.max_steps" in lines[0] and "--set" in lines[0]
    assert "demo" not in lines[0].replace("demo_multitask.json", "")  # no missing demo path beside it
    assert _files(cache) == []


def test_a_missing_path_outside_the_demo_is_reported_beside_the_typo(tmp_path, cache, capsys):
    """Only the demo's own paths wait for the demo: a user's missing file is a mistake like the typo."""
    recipe = _typo_recipe(tmp_path)
    assert main(["recipe", "validate", str(recipe), "--set", f"data.reader.folder={tmp_path / 'nowhere'}"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert (
        len(lines) == 2
        and "learnig_rate" in lines[0]
        and f"data.reader.folder: {tmp_path / 'nowhere'} not found" in lines[1]
    )
    assert _files(cache) == []
