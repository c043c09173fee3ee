"""The framework's CLI verbs: help, listings, recipe checks, scaffolding, predict, plugin verbs."""

import json
import sys

import orjson
import pytest

from ofa_core.cli.main import COMMANDS, main
from ofa_core.recipe.docs import json_schema
from ofa_core.registry.discovery import import_path
from ofa_core.testing import fake_image, registry_with, tiny_checkpoint


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("verb", [*COMMANDS, "recipe validate", "recipe show", "recipe schema"])
def test_every_verb_has_help(capsys, verb):
    code, out, _ = run(capsys, *verb.split(), "--help")
    assert code == 0 and "usage: ofa" in out


def test_tasks_and_plugins_list_providers(capsys, counting_installed):
    code, out, _ = run(capsys, "tasks")
    assert (
        code == 0 and "counting  [counting 0.1.0, entrypoint]" in out and "grounding  [grounding 0.1.0, builtin]" in out
    )
    code, out, _ = run(capsys, "tasks", "--all", "--json")
    listing = json.loads(out)
    [loss] = [entry for entry in listing["losses"] if entry["name"] == "label_smoothed_cross_entropy"]
    assert (loss["plugin"], loss["origin"]) == ("core", "builtin")
    code, out, _ = run(capsys, "plugins")
    assert "core 0.1.0 (builtin)  losses: label_smoothed_cross_entropy" in out
    assert "counting 0.1.0 (entrypoint)  tasks: counting" in out


def test_plugins_reports_failures_and_adds_plugin_verbs(capsys, tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('half-written plugin')\n")
    (tmp_path / "hello.py").write_text(
        "from ofa_core.plugin import hookimpl\n"
        "@hookimpl\n"
        "def ofa_register_commands(subparsers):\n"
        "    parser = subparsers.add_parser('hello', help='say hello')\n"
        "    parser.set_defaults(run=lambda args: print('hello from a plugin') or 0)\n"
    )
    code, out, err = run(capsys, "--plugins-dir", str(tmp_path), "plugins", "--errors")
    assert code == 1  # the listing is complete, and CI sees the broken plugin
    assert "core 0.1.0 (builtin)" in out and "hello (plugins-dir)" in out
    assert "FAILED broken (plugins-dir): RuntimeError: half-written plugin" in out and "Traceback" in out
    assert "warning: plugin 'broken' (plugins-dir) failed to load" in err
    code, out, _ = run(capsys, "--plugins-dir", str(tmp_path), "plugins", "--json")
    listing = json.loads(out)
    assert code == 1 and any(plugin["name"] == "core" for plugin in listing["plugins"])
    assert [(f["name"], f["error"]) for f in listing["failures"]] == [("broken", "RuntimeError: half-written plugin")]
    code, out, _ = run(capsys, "hello", "--plugins-dir", str(tmp_path))
    assert (code, out) == (0, "hello from a plugin\n")


def test_recipe_errors_are_one_line_exit_2_and_debug_raises(capsys, tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_bytes(orjson.dumps({"task": "grounding", "model": {"checkpoint": "."}, "trainig": {}}))
    code, _out, err = run(capsys, "recipe", "validate", str(recipe))
    assert code == 2 and f"error: {recipe}: trainig: unknown key (did you mean 'training'?)\n" in err
    assert all(line.startswith(f"error: {recipe}: ") for line in err.splitlines())  # one line per mistake
    with pytest.raises(Exception, match="trainig"):
        main(["recipe", "validate", str(recipe), "--debug"])


def test_recipe_show_schema_and_run_dry_run(capsys, tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    recipe = tmp_path / "r.json"
    recipe.write_bytes(
        orjson.dumps(
            {
                "task": "grounding",
                "model": {"checkpoint": "."},
                "data": {"reader": {"name": "grounding_jsonl", "train": "train.jsonl"}},
            }
        )
    )
    code, out, _ = run(capsys, "recipe", "show", str(recipe), "--set", "training.seed=3")
    assert code == 0
    assert "training.seed" in out and "= 3  # --set" in out and "# default" in out and "# this file" in out
    assert "# task grounding: prompt grounding.en" in out
    lines = {line.split(" = ")[0].strip(): line.split(" = ")[1] for line in out.splitlines() if " = " in line}
    assert lines["data.reader.train"] == f'"{tmp_path / "train.jsonl"}"  # this file'
    assert lines["data.reader.valid"] == "null  # default"
    assert lines["loss.name"] == '"label_smoothed_cross_entropy"  # task default'
    code, out, _ = run(capsys, "recipe", "show", str(recipe), "--set", 'loss={"name": "scst", "candidates": 3}')
    lines = {line.split(" = ")[0].strip(): line.split(" = ")[1] for line in out.splitlines() if " = " in line}
    assert code == 0 and lines["loss.name"] == '"scst"  # --set' and lines["loss.candidates"] == "3  # --set"
    assert lines["metrics[0].iou_threshold"] == "0.5  # default"
    code, out, _ = run(capsys, "recipe", "schema")
    assert json.loads(out) == json_schema()
    code, out, err = run(capsys, "run", str(recipe), "--dry-run")  # what `show` accepts, a run cannot start from
    assert (
        code == 2 and "model.checkpoint: " in err and f"data.reader.train: {tmp_path / 'train.jsonl'} is empty" in err
    )


def test_new_plugin_scaffold_works_and_never_overwrites(capsys, tmp_path, monkeypatch):
    code, _out, _ = run(capsys, "new-plugin", "my_vqa", "--dir", str(tmp_path))
    target = tmp_path / "ofa-plugin-my-vqa"
    assert code == 0 and (target / "pyproject.toml").is_file()
    assert 'my_vqa = "ofa_plugin_my_vqa"' in (target / "pyproject.toml").read_text()
    monkeypatch.syspath_prepend(str(target))
    module = import_path(target / "ofa_plugin_my_vqa")
    monkeypatch.setitem(sys.modules, "ofa_plugin_my_vqa", module)
    registry = registry_with(module, installed=True)
    assert registry.tasks.get("my_vqa").loss == "label_smoothed_cross_entropy"
    tests = import_path(target / "tests" / "test_ofa_plugin_my_vqa.py")
    tests.test_registers_a_complete_task()
    tests.test_exact_match_state_merges_by_sum()
    (target / "README.md").write_text("mine")
    code, _, err = run(capsys, "new-plugin", "my_vqa", "--dir", str(tmp_path))
    assert code == 2 and "already exists" in err and (target / "README.md").read_text() == "mine"
    code, _, err = run(capsys, "new-plugin", "My-VQA", "--dir", str(tmp_path))
    assert code == 2 and "lowercase letters" in err


def test_predict_writes_jsonl_for_images_folders_and_tsv(capsys, tmp_path):
    model = tiny_checkpoint(tmp_path / "model")
    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        fake_image(index, (40 + index, 30)).save(images / f"{index}.png")
    tsv = tmp_path / "inputs.tsv"
    tsv.write_text("id\timage\ttext\nq1\timages/0.png\ta red car\n")
    output = tmp_path / "out.jsonl"
    code, _, err = run(
        capsys,
        "predict",
        "--model",
        str(model),
        "--task",
        "grounding",
        "--lang",
        "zh",
        "--field",
        "text=a dog",
        "--batch-size",
        "2",
        str(images),
        str(tsv),
        "-o",
        str(output),
    )
    assert code == 0, err
    rows = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert [row["id"] for row in rows] == ["0", "1", "2", "q1"]
    assert (
        rows[0]["source"] == '这段文字" a dog "描述的是哪个区域？'
        and rows[3]["source"] == '这段文字" a red car "描述的是哪个区域？'
    )
    assert all((row["prediction"] is None or len(row["prediction"]) == 4) and "text" in row for row in rows)  # boxes
    code, _, err = run(capsys, "predict", "--model", str(model), "--task", "grounding", str(images), "-o", str(output))
    assert code == 2 and "already exists; pass --overwrite" in err
    code, _, err = run(capsys, "predict", "--model", str(model), "--task", "grounding", str(images / "0.png"))
    assert code == 2 and "needs the field 'text'" in err


def test_eval_and_run_errors_exit_2(capsys, tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_bytes(orjson.dumps({"task": "toy", "model": {"checkpoint": "."}, "plugins": {"load": ["gone.py"]}}))
    code, _, err = run(capsys, "eval", str(recipe), "--checkpoint", str(tmp_path / "missing"))
    assert code == 2 and err.startswith(f"error: {tmp_path / 'missing'}: --checkpoint: no such directory")
    code, _, err = run(capsys, "run", str(recipe))
    assert code == 2 and err.startswith(f"error: {recipe}: plugins.load[0]: ") and "gone.py does not exist" in err
    code, _, err = run(capsys, "run", str(tmp_path / "absent.json"))
    assert code == 2 and "absent.json: recipe not found" in err


def test_the_process_entry_point_returns_mains_code_and_skips_the_final_collections(monkeypatch):
    """`ofa` and `python -m ofa_core` run `run_command`: main's exit code, with the survivors frozen for the exit."""
    import gc
    import importlib
    import subprocess
    import tomllib
    from pathlib import Path

    cli_main = importlib.import_module("ofa_core.cli.main")  # the module; the package exports its `main` function
    events = []
    monkeypatch.setattr(cli_main, "main", lambda: events.append("main") or 2)
    monkeypatch.setattr(gc, "freeze", lambda: events.append("freeze"))
    assert cli_main.run_command() == 2 and events == ["main", "freeze"]
    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ofa"] == "ofa_core.cli:run_command"
    done = subprocess.run(
        [sys.executable, "-m", "ofa_core", "recipe", "validate", "no-such-recipe.json"], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
