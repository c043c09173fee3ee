"""docs/report.md as written: its commands run verbatim in a folder laid out as the page assumes (recipe.json,
its photos and valid.jsonl, a model directory, and a run's log and final predictions in run/)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from ofa_core.cli.main import main
from ofa_core.testing import tiny_checkpoint
from tests.report.pages import read_sections
from tests.test_docs import fenced_blocks

PAGE = Path(__file__).parents[2] / "docs" / "report.md"


def test_the_page_s_commands_run(grounding, tmp_path, monkeypatch, capsys) -> None:
    folder = tmp_path / "work"
    shutil.copytree(grounding["root"], folder)
    (folder / "predictions.jsonl").unlink()  # the page makes its own
    shutil.copy(grounding["predictions"], folder / "run" / "predictions-valid-checkpoint-40.jsonl")  # a run's final
    tiny_checkpoint(folder / "model")
    monkeypatch.chdir(folder)
    lines = [line for language, block in fenced_blocks(PAGE) if language == "bash" for line in block.splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert main(shlex.split(line)[1:]) == 0, line
    capsys.readouterr()
    (section,) = read_sections((folder / "report.html").read_text())  # the evaluation's boxes, drawn
    assert len(section["cards"]) == 4 and all(card["boxes"] == (1, 1) for card in section["cards"])
    assert (folder / "predictions.jsonl").is_file()
    assert '<svg class="curve"' in (folder / "report-with-curves.html").read_text()
    assert '<svg class="curve"' in (folder / "run" / "predictions-valid-checkpoint-40.html").read_text()
