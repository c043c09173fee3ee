"""`ofa demo-data`, demo data created on first use, `$VARIABLES` in recipe paths, and the message of a recipe whose
weights and data are missing."""

from __future__ import annotations

import functools

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.demo import writer

from .conftest import RECIPES, SMALL


def test_demo_data_writes_the_default_folder_and_refuses_to_overwrite_it(cache, capsys):
    assert main(["demo-data", "--train-images", "4", "--valid-images", "2"]) == 0
    out, err = capsys.readouterr()
    assert f"wrote {cache / 'demo'}" in out and "4 + 2 photos" in out and "run recipes/demo_caption.json" in out
    assert "Writing model shards" not in err, "no transformers bar in a log"
    manifest = orjson.loads((cache / "demo" / "demo.json").read_bytes())
    assert manifest["counts"]["train_images"] == 4 and (cache / "demo" / "model" / "model.safetensors").is_file()
    assert main(["demo-data"]) == 2
    assert "already holds the demo; pass --force" in capsys.readouterr().err
    assert main(["demo-data", "--force", "--train-images", "3", "--valid-images", "2"]) == 0
    assert orjson.loads((cache / "demo" / "demo.json").read_bytes())["counts"]["train_images"] == 3
    assert not list(cache.glob(".demo.tmp-*"))  # built beside the target and renamed into place


def test_a_demo_recipe_generates_the_missing_demo_data_on_first_use(cache, monkeypatch, capsys):
    monkeypatch.setattr(writer, "generate", functools.partial(writer.generate, sizes=SMALL))
    assert main(["recipe", "validate", str(RECIPES / "demo_caption.json")]) == 0
    err = capsys.readouterr().err
    assert "generating it" in err and f"wrote the demo data to {cache / 'demo'}" in err
    assert (cache / "demo" / "muge" / "IC_valid.tsv").is_file()
    assert (
        main(
            [
                "recipe",
                "validate",
                str(RECIPES / "demo_vqa.json"),
                "--set",
                f"model.checkpoint={cache / 'demo' / 'model'}",
            ]
        )
        == 0
    )
    assert "generating" not in capsys.readouterr().err  # generated once


def test_loading_a_recipe_has_no_side_effects_the_cli_generates_the_demo(cache, monkeypatch):
    """`recipe.load` only reports the missing demo path (with the path, for the CLI); it never writes anything."""
    from ofa_core.recipe import MissingRecipePath, load

    monkeypatch.setattr(writer, "generate", lambda *args, **kwargs: pytest.fail("a recipe load generated the demo"))
    with pytest.raises(MissingRecipePath, match="model.checkpoint") as error:
        load(RECIPES / "demo_caption.json")
    assert error.value.path == (cache / "demo" / "model").resolve()
    assert not cache.exists()


def test_recipe_paths_expand_environment_variables(tmp_path, cache, monkeypatch, capsys):
    (cache / "data").mkdir(parents=True)
    monkeypatch.setenv("MY_MODELS", str(tmp_path))
    (tmp_path / "model").mkdir()
    recipe = tmp_path / "recipe.json"
    recipe.write_bytes(
        orjson.dumps(
            {
                "model": {"checkpoint": "${MY_MODELS}/model"},
                "task": "caption",
                "data": {"reader": {"name": "muge", "folder": "$OFA_CACHE_DIR/data"}},
            }
        )
    )
    assert main(["recipe", "show", str(recipe), "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["model.checkpoint"]["value"] == str(tmp_path / "model")
    assert shown["data.reader.folder"]["value"] == str(cache / "data")
    monkeypatch.delenv("MY_MODELS")
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert (
        "model.checkpoint: environment variable $MY_MODELS in '${MY_MODELS}/model' is not set"
        in capsys.readouterr().err
    )


def test_the_main_recipe_without_weights_or_data_says_what_to_download_convert_and_where(capsys):
    recipe = RECIPES / "muge_caption.json"
    if (RECIPES.parent / "checkpoints" / "ofa-cn-base").exists():
        pytest.skip("this checkout has the converted weights")
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert all(line.startswith(f"error: {recipe}: ") for line in err.splitlines()) and "Traceback" not in err
    for needed in (
        "model.checkpoint",
        "checkpoints/ofa-cn-base not found",
        "ofa_cn_base.pt",
        "https://",
        "python -m ofa_core convert fairseq ofa_cn_base.pt --out checkpoints/ofa-cn-base",
        "IC_train.jsonl",
        "data/MUGE",
        "python -m ofa_core run recipes/demo_caption.json",
    ):
        assert needed in err, needed


def test_processes_started_together_generate_the_demo_once(cache):
    """As under torchrun: two processes reach a missing demo at the same time; one writes it, the other waits and
    reads it."""
    import os
    import subprocess
    import sys

    script = (
        "import functools, sys; from ofa_core.demo import folder, writer; "
        "from tests.demo.conftest import SMALL; writer.generate = functools.partial(writer.generate, sizes=SMALL); "
        "folder.create_on_first_use(folder.demo_dir() / 'muge')"
    )
    root = RECIPES.parent
    env = {**os.environ, "OFA_CACHE_DIR": str(cache), "PYTHONPATH": str(root)}
    processes = [
        subprocess.Popen([sys.executable, "-c", script], cwd=root, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors
    assert sum("generating it" in err for err in errors) == 1, errors
    assert (cache / "demo" / "demo.json").is_file() and not list(cache.glob(".demo.tmp-*"))
