"""The tree stays formatted and lint-free: `ruff check` and `ruff format --check` (configured in pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_finds_nothing(command: list[str]) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), *command, "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


MAX_FUNCTION_LINES = 60
CHECKED = ("ofa_core", "ofa_tasks", "plugins", "tools", "benchmarks")
"""The code a reader works in: the package, the tasks, the example plugin, the reference tools and the benchmarks."""
NUMERICS = ("ofa_core/model/modeling/", "ofa_core/model/search")
"""Exempt: the network's forward passes and the official beam search, kept step for step in the shape of the
official code they reproduce, so they can be read side by side with it."""


def long_functions(root: Path) -> list[str]:
    """`path:line name (N lines)` for every function over MAX_FUNCTION_LINES outside the numerics."""
    found = []
    for folder in CHECKED:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(NUMERICS):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"{relative}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_over_60_lines_outside_the_numerics() -> None:
    assert long_functions(REPO) == [], "split these into named steps"


def test_the_length_check_finds_a_long_function_but_not_in_the_numerics(tmp_path: Path) -> None:
    body = "def long():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    for module in ("ofa_core/trainer/loop.py", "ofa_core/model/modeling/model.py", "ofa_tasks/vqa/plugin.py"):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_text(body, encoding="utf-8")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "short.py").write_text("def short():\n" + "    x = 1\n" * 59, encoding="utf-8")
    assert long_functions(tmp_path) == [
        "ofa_core/trainer/loop.py:1 long (61 lines)",
        "ofa_tasks/vqa/plugin.py:1 long (61 lines)",
    ]
