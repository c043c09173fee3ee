"""The command line: help everywhere, one-line errors with exit 2, tracebacks only with --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ofa_core.convert.safe_load import CheckpointError

from .conftest import run_cli


@pytest.mark.parametrize(
    "argv", [[], ["convert"], ["convert", "fairseq"], ["convert", "port"], ["convert", "to-fairseq"]]
)
def test_help(argv: list[str], capsys) -> None:
    assert run_cli(*argv, "--help") == 0
    assert "usage: ofa" in capsys.readouterr().out


def test_usage_error_exits_2(capsys) -> None:
    assert run_cli("convert", "fairseq") == 2
    assert "required" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        run_cli("--debug", "convert", "fairseq", tmp_path / "missing.pt", "--out", tmp_path / "out")
    with pytest.raises(CheckpointError):
        run_cli("convert", "fairseq", tmp_path / "missing.pt", "--out", tmp_path / "out", "--debug")


def test_python_dash_m(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ofa_core",
            "convert",
            "fairseq",
            str(tmp_path / "missing.pt"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
