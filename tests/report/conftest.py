"""Shared inputs of the report tests, written once: a grounding recipe with its photos, predictions and a run log,
and a mixture of that grounding task with a text-only summarization task, with a predictions file per task."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from PIL import Image

BOXES = {  # id: (reference box, predicted box), in pixels of a 64x48 photo
    "g0": ([8, 8, 40, 40], [8, 8, 40, 40]),
    "g1": ([8, 8, 40, 40], [30, 30, 60, 46]),
    "g2": ([10, 4, 50, 30], [12, 6, 48, 28]),
    "g3": ([0, 0, 20, 20], [40, 30, 60, 46]),
}


@pytest.fixture(scope="session")
def grounding(tmp_path_factory) -> dict[str, Path]:
    """A grounding_jsonl recipe (photos as JPEG files), its predictions file without scores, and a run's log."""
    root = tmp_path_factory.mktemp("report-grounding")
    lines = []
    for index, (key, (reference, _)) in enumerate(BOXES.items()):
        Image.new("RGB", (64, 48), (40 * index, 120, 200 - 40 * index)).save(root / f"{key}.jpg", quality=90)
        lines.append(
            {
                "id": key,
                "image": f"{key}.jpg",
                "text": f"the {['red', 'green', 'blue', 'grey'][index]} block",
                "box": reference,
            }
        )
    (root / "valid.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "grounding", "lang": "en"},
        "data": {"reader": {"name": "grounding_jsonl", "valid": "valid.jsonl"}},
        "training": {"output_dir": "run", "report_to": "none"},
    }
    (root / "recipe.json").write_bytes(orjson.dumps(recipe))
    predictions = root / "predictions.jsonl"
    predictions.write_bytes(
        b"".join(
            orjson.dumps({"id": key, "prediction": predicted, "references": [reference]}) + b"\n"
            for key, (reference, predicted) in BOXES.items()
        )
    )
    run = root / "run"
    run.mkdir()
    log = [
        {"step": step, "split": "train", "time": step / 10, "loss": 5.0 / step, "lr": 1e-4 * step / 40, "epoch": 0.1}
        for step in range(10, 50, 10)
    ]
    log += [{"step": 40, "split": "eval", "acc@0.5": 50.0, "miou": 61.2, "dropped": 0.0, "precision": "fp32"}]
    (run / "log.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in log))
    return {"root": root, "recipe": root / "recipe.json", "predictions": predictions, "run": run}


SUMMARIES = [  # id: article, reference, prediction; ROUGE-L of the prediction 100, 50 and 0
    ("s:1", "there was a red car on the road today", "red car", "red car"),
    ("s:2", "a big dog ran in the park all day", "big dog", "a dog"),
    ("s:3", "the cat slept on a warm mat", "cat sleeps", "sun"),
]


@pytest.fixture(scope="session")
def mixture(grounding, tmp_path_factory) -> dict:
    """A two-task recipe (labels `boxes`: the grounding above, `summary`: summarization of a TSV) and the
    predictions files a mixture's evaluation writes, one per task (`run-<label>.jsonl`), without scores."""
    root = tmp_path_factory.mktemp("report-mixture") / "mixture"
    shutil.copytree(grounding["root"], root)
    (root / "s.tsv").write_text("".join(f"{article}\t{summary}\n" for _, article, summary, _ in SUMMARIES))
    single = orjson.loads(grounding["recipe"].read_bytes())
    tasks = [
        {"label": "boxes", "task": single["task"], "data": single["data"]},
        {
            "label": "summary",
            "task": {"name": "summarization"},
            "data": {"reader": {"name": "summary_tsv", "valid": "s.tsv"}},
        },
    ]
    (root / "mixture.json").write_bytes(
        orjson.dumps({"model": single["model"], "training": single["training"], "tasks": tasks})
    )
    (root / "run-boxes.jsonl").write_bytes(grounding["predictions"].read_bytes())
    (root / "run-summary.jsonl").write_bytes(
        b"".join(
            orjson.dumps({"id": key, "prediction": predicted, "references": [summary]}) + b"\n"
            for key, _, summary, predicted in SUMMARIES
        )
    )
    return {
        "root": root,
        "recipe": root / "mixture.json",
        "files": [root / "run-boxes.jsonl", root / "run-summary.jsonl"],
    }


def report_command(grounding: dict[str, Path], out: Path, *extra: str) -> list[str]:
    """The `ofa report` arguments for the grounding predictions with their recipe, writing `out`."""
    return ["report", str(grounding["predictions"]), "--recipe", str(grounding["recipe"]), "--out", str(out), *extra]
