"""docs/peft.md as written: its delta commands (merge, predict on the delta and on the merged model) run verbatim in
a folder laid out as the page assumes, and the two predictions agree, as the page says."""

from __future__ import annotations

import shlex
from pathlib import Path

import orjson

from ofa_core.cli.main import main
from ofa_core.testing import fake_image, run_recipe
from tests.parameter_efficient.test_peft import recipe

PAGE = Path(__file__).parents[2] / "docs" / "peft.md"


def bash_blocks() -> list[list[str]]:
    blocks, current, inside = [], [], None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line.strip("`").strip(), []
            else:
                if inside == "bash":
                    blocks.append(current)
                inside = None
        elif inside is not None:
            current.append(line)
    return blocks


def test_the_delta_commands_run_and_agree(data, tmp_path, monkeypatch):
    (tmp_path / "MUGE").symlink_to(data / "MUGE")
    (tmp_path / "model").symlink_to(data / "model")
    run_recipe(recipe({"method": "lora", "r": 4}, "runs/demo_vqa_lora"), tmp_path, max_steps=1)
    (tmp_path / "photos").mkdir()
    fake_image(0).save(tmp_path / "photos" / "photo0.png")
    monkeypatch.chdir(tmp_path)
    (commands,) = [block for block in bash_blocks() if any(line.startswith("ofa merge") for line in block)]
    assert len(commands) == 3
    for line in commands:
        assert main(shlex.split(line)[1:]) == 0, line
    delta, merged = (
        [orjson.loads(row)["text"] for row in Path(name).read_bytes().splitlines()]
        for name in ("delta.jsonl", "merged.jsonl")
    )
    assert len(delta) == 1 and delta == merged
