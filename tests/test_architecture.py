"""The layering holds: import contracts pass and catch a forbidden import, and the light paths stay light.

`import ofa_core.plugin` and the CLI verbs that only read plugins and recipes must never import torch or
transformers (each costs seconds and hundreds of MB); only commands that touch a model or a tensor do.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
CONTRACTS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


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


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "ofa_core/model/search.py",
            "import ofa_core.trainer.loop",
            "ofa_core.model is not allowed to import ofa_core.trainer",
        ),
        ("ofa_core/plugin/_specs.py", "import torch", "ofa_core.plugin is not allowed to import torch"),
        ("ofa_tasks/vqa/plugin.py", "import ofa_core.model.boxes", "ofa_tasks is not allowed to import ofa_core.model"),
        (
            "ofa_tasks/caption/plugin.py",
            "from ofa_core.plugin._specs import TaskSpec",
            "ofa_tasks is not allowed to import ofa_core.plugin._specs",
        ),
        (
            "ofa_tasks/ocr/readers.py",
            "from ofa_core.errors import OFAError",
            "ofa_tasks is not allowed to import ofa_core.errors",
        ),
        (
            "ofa_tasks/vqa/metrics.py",
            "import ofa_tasks.caption.text",
            "ofa_tasks.vqa is not allowed to import ofa_tasks.caption",
        ),
        ("ofa_core/recipe/loading.py", "import ofa_tasks.caption", "ofa_core is not allowed to import ofa_tasks"),
        (
            "ofa_core/trainer/loop.py",
            "import ofa_core.cli.main",
            "ofa_core.trainer is not allowed to import ofa_core.cli",
        ),
        (
            "ofa_core/trainer/scst_options.py",
            "def lazy():\n    import ofa_core.trainer.scst",
            "ofa_core.trainer.scst_options is not allowed to import ofa_core.trainer.scst",
        ),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    for package in ("ofa_core", "ofa_tasks"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}\n")
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout


def test_no_contract_lets_an_import_through() -> None:
    """Each layer imports only those below it, with no exception: the test kit sits above what it uses."""
    assert [contract["name"] for contract in CONTRACTS if contract.get("ignore_imports")] == []


def test_tasks_may_import_nothing_of_the_core_but_the_plugin_api() -> None:
    """The task contract names every module of ofa_core except the plugin API, so a new core module is covered."""
    [contract] = [c for c in CONTRACTS if c.get("source_modules") == ["ofa_tasks"]]
    core = {f"ofa_core.{module.name}" for module in pkgutil.iter_modules([str(REPO / "ofa_core")])}
    plugin = {f"ofa_core.plugin.{module.name}" for module in pkgutil.iter_modules([str(REPO / "ofa_core" / "plugin")])}
    # its modules are private, but for the old public paths kept until 0.2.0 (tests/framework/test_deprecated_paths.py)
    old_paths = {
        f"ofa_core.plugin.{name}" for name in ("answer_lists", "hooks", "records", "scores", "specs", "testing", "tsv")
    }
    assert {name for name in plugin if not name.startswith("ofa_core.plugin._")} == old_paths
    assert core - {"ofa_core.plugin", "ofa_core.__main__"} | plugin <= set(contract["forbidden_modules"])


def test_the_example_plugin_imports_only_the_plugin_api() -> None:
    """plugins/ is outside the contracts' packages: its code may import ofa_core and ofa_core.plugin, its tests the
    kit."""
    allowed = {"ofa_core", "ofa_core.plugin"}
    found = {}
    for path in (REPO / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                kit = "tests" in path.parts and name == "ofa_core.testing"
                if name.split(".")[0] == "ofa_core" and name not in allowed and not kit:
                    found[f"{path.relative_to(REPO)}:{node.lineno}"] = name
    assert found == {}


def test_a_plugin_can_use_the_top_level_package_as_with_llm() -> None:
    import ofa_core
    import ofa_core.plugin

    assert ofa_core.hookimpl is ofa_core.plugin.hookimpl
    assert ofa_core.OFAError is ofa_core.plugin.OFAError


def _modules_after(code: str, cwd: Path) -> dict:
    script = textwrap.dedent(code) + textwrap.dedent("""
        import json, sys
        print(json.dumps({name: name in sys.modules for name in ("torch", "transformers")}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module", ["ofa_core", "ofa_core.plugin", "ofa_core.registry", "ofa_core.recipe", "ofa_core.hookspecs"]
)
def test_light_modules_import_neither_torch_nor_transformers(module: str, tmp_path: Path) -> None:
    assert _modules_after(f"import warnings; warnings.simplefilter('ignore'); import {module}", tmp_path) == {
        "torch": False,
        "transformers": False,
    }


@pytest.fixture(scope="module")
def light_model(tmp_path_factory) -> Path:
    """A saved tiny model: validation reads its files (not its weights), so it must be a real one."""
    from ofa_core.testing import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("light") / "model")


def _light_recipe(folder: Path, model: Path) -> Path:
    import base64
    import io

    from ofa_core.testing import fake_image

    png = io.BytesIO()
    fake_image().save(png, format="PNG")
    (folder / "muge").mkdir()
    (folder / "muge" / "IC_train.jsonl").write_text('{"image_id": "1", "text": ["一只猫"]}\n')
    (folder / "muge" / "IC_train.tsv").write_text(f"1\t{base64.b64encode(png.getvalue()).decode()}\n")
    recipe = {
        "task": {"name": "caption", "lang": "zh"},
        "model": {"checkpoint": str(model)},
        "data": {"reader": {"name": "muge", "folder": "muge"}},
    }
    path = folder / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["tasks", "--all"],
        ["plugins"],
        ["recipe", "validate", "RECIPE"],
        ["recipe", "show", "RECIPE"],
        ["recipe", "schema"],
        ["new-plugin", "light_task", "--dir", "PLUGINS"],
        ["run", "RECIPE", "--dry-run"],
        ["--help"],
    ],
)
def test_light_commands_import_neither_torch_nor_transformers(
    argv: list[str], tmp_path: Path, light_model: Path
) -> None:
    recipe = _light_recipe(tmp_path, light_model)
    argv = [str(recipe) if a == "RECIPE" else str(tmp_path / "plugins") if a == "PLUGINS" else a for a in argv]
    loaded = _modules_after(
        f"""
        import contextlib, io
        from ofa_core.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main({argv!r})
        assert code == 0, code
    """,
        tmp_path,
    )
    assert loaded == {"torch": False, "transformers": False}


def test_commands_that_need_a_model_still_get_it(tmp_path: Path) -> None:
    """The light paths are not light by luck: the model classes load (and register with transformers) on use."""
    loaded = _modules_after(
        """
        import ofa_core
        from transformers import AutoConfig
        config = ofa_core.OFAConfig.from_preset("tiny-test")
        config.save_pretrained("saved")
        assert type(AutoConfig.from_pretrained("saved")).__name__ == "OFAConfig"
    """,
        tmp_path,
    )
    assert loaded == {"torch": True, "transformers": True}
