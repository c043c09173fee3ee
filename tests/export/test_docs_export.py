"""docs/export.md as written: its commands run verbatim in a folder laid out as the page assumes (runs/demo_caption,
photos/), and its Python snippet, run on the exported folder, prints what the project's greedy search answers."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess
from pathlib import Path

import orjson

from ofa_core.cli.main import main
from ofa_core.testing import fake_image

PAGE = Path(__file__).parents[2] / "docs" / "export.md"


def blocks(language: str) -> list[str]:
    text, found, current, inside = PAGE.read_text(encoding="utf-8"), [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line.strip("`").strip(), []
            else:
                if inside == language:
                    found.append("\n".join(current))
                inside = None
        elif inside is not None:
            current.append(line)
    return found


def test_the_page_s_commands_and_snippet_run(tmp_path, cn_model, monkeypatch):
    shutil.copytree(cn_model, tmp_path / "runs" / "demo_caption")
    (tmp_path / "photos").mkdir()
    for seed in range(2):
        fake_image(seed).save(tmp_path / "photos" / f"photo{seed}.png")
    monkeypatch.chdir(tmp_path)
    (commands,) = blocks("bash")
    ran = 0
    for line in commands.splitlines():
        if line.startswith("ofa "):
            assert main(shlex.split(line)[1:]) == 0, line
        else:
            subprocess.run(line, shell=True, check=True, executable="/bin/bash")
        ran += 1
    assert ran == 4
    assert len((tmp_path / "captions.jsonl").read_bytes().splitlines()) == 2
    assert len((tmp_path / "captions-int8.jsonl").read_bytes().splitlines()) == 2

    (snippet,) = blocks("python")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, str(PAGE), "exec"), {"__name__": "__snippet__"})
    greedy = tmp_path / "greedy.jsonl"
    assert (
        main(
            [
                "predict",
                "--backend",
                "onnxruntime",
                "--model",
                "exported/demo_caption",
                "--task",
                "caption",
                "--lang",
                "zh",
                "photos/photo0.png",
                "--generation",
                "num_beams=1",
                "--generation",
                "no_repeat_ngram_size=0",
                "--generation",
                "max_new_tokens=17",
                "-o",
                str(greedy),
            ]
        )
        == 0
    )
    expected = orjson.loads(greedy.read_bytes().splitlines()[0])["text"]
    assert printed.getvalue().strip() == expected and expected


def test_the_snippet_imports_neither_torch_nor_this_project():
    (snippet,) = blocks("python")
    imported = {line.split()[1].split(".")[0] for line in snippet.splitlines() if line.startswith(("import ", "from "))}
    assert imported == {"json", "numpy", "onnxruntime", "PIL", "tokenizers"}
