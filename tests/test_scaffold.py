"""`ofa new-plugin`: the templates render completely, ship as package data, and the plugin they make
installs, is found through its entry point and passes its own tests."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ofa_core import OFAError
from ofa_core.scaffold import SUFFIX, create, render, templates

REPO = Path(__file__).parents[1]
SCAFFOLD = REPO / "ofa_core" / "scaffold"
PLACEHOLDERS = ("__NAME__", "__MODULE__", "__DIST__")
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def python(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_scaffolded_plugin_installs_is_listed_and_passes_its_own_tests(tmp_path):
    done = python("-m", "ofa_core", "new-plugin", "my_task", "--dir", str(tmp_path), cwd=tmp_path)
    source = tmp_path / "ofa-plugin-my-task"
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"created {source}")
    site = tmp_path / "site"
    env = {**os.environ, **OFFLINE}
    done = python(
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(site),
        str(source),
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "ofa_plugin_my_task" / "__init__.py").is_file()
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    done = python("-m", "ofa_core", "tasks", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^  my_task  \[my_task 0\.1\.0, entrypoint\]  answer a question", done.stdout, re.M), done.stdout
    done = python("-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests"), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout


@pytest.mark.parametrize("name", ["my_task", "q2", "vqa_v2_yes_no"])
def test_render_fills_every_placeholder_and_imports_only_the_plugin_api(name):
    files = render(name)
    module = f"ofa_plugin_{name}"
    assert set(files) == {"pyproject.toml", "README.md", f"{module}/__init__.py", f"tests/test_{module}.py"}
    for path, text in files.items():
        assert not any(placeholder in path or placeholder in text for placeholder in PLACEHOLDERS), path
    assert f'{name} = "{module}"' in files["pyproject.toml"]
    assert f'name = "ofa-plugin-{name.replace("_", "-")}"' in files["pyproject.toml"]
    for path in (f"{module}/__init__.py", f"tests/test_{module}.py"):
        tree = ast.parse(files[path], path)
        imported = {
            f"{node.module}.{alias.name}" if node.module == "ofa_core" else node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        core = {name for name in imported if name.split(".")[0] == "ofa_core"}
        assert core <= {"ofa_core.plugin", "ofa_core.testing"}, (path, core)
        assert "-100" not in files[path]
    # The core's loss (the Task default, which the generated test checks): the plugin does not re-implement it.
    assert "LossSpec" not in files[f"{module}/__init__.py"] and "log_softmax" not in files[f"{module}/__init__.py"]


def test_create_refuses_bad_names_and_existing_targets_writing_nothing(tmp_path):
    with pytest.raises(OFAError, match="lowercase letters"):
        create(tmp_path, "My-Task")
    assert not any(tmp_path.iterdir())
    target = create(tmp_path, "my_task")
    (target / "README.md").write_text("mine")
    with pytest.raises(OFAError, match="already exists"):
        create(tmp_path, "my_task")
    assert (target / "README.md").read_text() == "mine"


def test_every_template_ships_as_package_data(tmp_path):
    on_disk = {
        path.relative_to(SCAFFOLD).as_posix()
        for path in (SCAFFOLD / "templates").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert on_disk and all(path.endswith(SUFFIX) for path in on_disk), on_disk
    assert {f"templates/{path}{SUFFIX}" for path in templates()} == on_disk  # what importlib.resources finds
    # A wheel built with this project's pyproject.toml from a copy holding just the scaffold package.
    copy = tmp_path / "src"
    (copy / "ofa_core").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", copy)
    (copy / "README.md").write_text("copy\n")
    shutil.copy(REPO / "ofa_core" / "__init__.py", copy / "ofa_core")
    shutil.copytree(SCAFFOLD, copy / "ofa_core" / "scaffold", ignore=shutil.ignore_patterns("__pycache__"))
    done = python(
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        str(tmp_path / "dist"),
        str(copy),
        env={**os.environ, **OFFLINE},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    shipped = {
        name.removeprefix("ofa_core/scaffold/")
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("ofa_core/scaffold/templates/")
    }
    assert shipped == on_disk
