"""The layering holds: import contracts pass and catch a forbidden import, and the light paths stay light.

`import ofa_core.plugin` and the CLI verbs that only read plugins and recipes must never import torch or
transformers (each costs seconds and hundreds of MB); only commands that touch a model or a tensor do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


def _lint_imports(cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess:
    env = None
    if env_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(env_path)}
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("ofa_core/model/search.py", "import ofa_core.trainer.loop", "ofa_core.model is not allowed to import ofa_core.trainer"),
    ("ofa_core/plugin/specs.py", "import torch", "ofa_core.plugin is not allowed to import torch"),
    ("ofa_tasks/vqa/metrics.py", "import ofa_tasks.caption.text", "ofa_tasks.vqa is not allowed to import ofa_tasks.caption"),
    ("ofa_core/recipe/loading.py", "import ofa_tasks.caption", "ofa_core is not allowed to import ofa_tasks"),
    ("ofa_core/trainer/loop.py", "import ofa_core.cli.main", "ofa_core.trainer is not allowed to import ofa_core.cli"),
    ("ofa_core/trainer/scst_options.py", "def lazy():\n    import ofa_core.trainer.scst",
     "ofa_core.trainer.scst_options is not allowed to import ofa_core.trainer.scst"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    for package in ("ofa_core", "ofa_tasks"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}\n")
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout


def _modules_after(code: str, cwd: Path) -> dict:
    script = textwrap.dedent(code) + textwrap.dedent("""
        import json, sys
        print(json.dumps({name: name in sys.modules for name in ("torch", "transformers")}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["ofa_core", "ofa_core.plugin", "ofa_core.registry", "ofa_core.recipe", "ofa_core.hookspecs"])
def test_light_modules_import_neither_torch_nor_transformers(module: str, tmp_path: Path) -> None:
    assert _modules_after(f"import warnings; warnings.simplefilter('ignore'); import {module}", tmp_path) == \
        {"torch": False, "transformers": False}


@pytest.fixture(scope="module")
def light_model(tmp_path_factory) -> Path:
    """A saved tiny model: validation reads its files (not its weights), so it must be a real one."""
    from ofa_core.plugin.testing import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("light") / "model")


def _light_recipe(folder: Path, model: Path) -> Path:
    import base64
    import io

    from ofa_core.plugin.testing import fake_image

    png = io.BytesIO()
    fake_image().save(png, format="PNG")
    (folder / "muge").mkdir()
    (folder / "muge" / "IC_train.jsonl").write_text('{"image_id": "1", "text": ["一只猫"]}\n')
    (folder / "muge" / "IC_train.tsv").write_text(f"1\t{base64.b64encode(png.getvalue()).decode()}\n")
    recipe = {"task": {"name": "caption", "lang": "zh"}, "model": {"checkpoint": str(model)},
              "data": {"reader": {"name": "muge", "folder": "muge"}}}
    path = folder / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path


@pytest.mark.parametrize("argv", [
    ["tasks", "--all"], ["plugins"], ["recipe", "validate", "RECIPE"], ["recipe", "show", "RECIPE"],
    ["recipe", "schema"], ["new-plugin", "light_task", "--dir", "PLUGINS"], ["run", "RECIPE", "--dry-run"], ["--help"],
])
def test_light_commands_import_neither_torch_nor_transformers(argv: list[str], tmp_path: Path, light_model: Path) -> None:
    recipe = _light_recipe(tmp_path, light_model)
    argv = [str(recipe) if a == "RECIPE" else str(tmp_path / "plugins") if a == "PLUGINS" else a for a in argv]
    loaded = _modules_after(f"""
        import contextlib, io
        from ofa_core.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main({argv!r})
        assert code == 0, code
    """, tmp_path)
    assert loaded == {"torch": False, "transformers": False}


def test_commands_that_need_a_model_still_get_it(tmp_path: Path) -> None:
    """The light paths are not light by luck: the model classes load (and register with transformers) on use."""
    loaded = _modules_after("""
        import ofa_core
        from transformers import AutoConfig
        config = ofa_core.OFAConfig.from_preset("tiny-test")
        config.save_pretrained("saved")
        assert type(AutoConfig.from_pretrained("saved")).__name__ == "OFAConfig"
    """, tmp_path)
    assert loaded == {"torch": True, "transformers": True}
