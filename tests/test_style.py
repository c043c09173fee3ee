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
# The model's numerics (layers, attention, the search's step) read best as the one computation they are.
NUMERICS = REPO / "ofa_core" / "model" / "modeling"


def long_functions(roots: list[Path], base: Path = REPO, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """'path:line name (N lines)' for each function or method over `limit` lines, docstring included."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if NUMERICS in path.parents:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > limit:
                        found.append(f"{path.relative_to(base)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_outside_the_model_numerics_is_over_60_lines() -> None:
    assert long_functions([REPO / "ofa_core", REPO / "ofa_tasks", REPO / "plugins"]) == []


def test_the_length_check_sees_a_long_function(tmp_path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}", encoding="utf-8")
    (tmp_path / "short.py").write_text("def short():\n    return 1\n", encoding="utf-8")
    assert long_functions([tmp_path], base=tmp_path) == [f"long.py:1 long ({MAX_FUNCTION_LINES + 1} lines)"]
