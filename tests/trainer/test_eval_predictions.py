"""`ofa eval --predictions OUT.jsonl`: one line per row, every candidate ranked for a closed set, and an existing
file kept unless `--overwrite`."""

from __future__ import annotations

from pathlib import Path

import orjson
from PIL import Image

from ofa_core.cli import main
from ofa_core.testing import tiny_checkpoint

LABELS = ["红色", "猫", "golden retriever"]


def _recipe(tmp_path: Path, **task_options) -> Path:
    for index, label in enumerate(LABELS):
        folder = tmp_path / "squares" / "val" / label
        folder.mkdir(parents=True)
        for copy in range(2):
            Image.new("RGB", (24, 24), (80 * index, 40 * copy, 200 - 60 * index)).save(folder / f"{copy}.png")
    tiny_checkpoint(tmp_path / "model")
    recipe = {
        "model": {"checkpoint": "model"},
        "task": {"name": "classification", "lang": "zh", "options": {"labels": LABELS, **task_options}},
        "data": {"reader": {"name": "image_folder", "root": "squares"}},
        "training": {"output_dir": "run", "report_to": "none", "per_device_eval_batch_size": 4},
    }
    path = tmp_path / "recipe.json"
    path.write_bytes(orjson.dumps(recipe))
    return path


def _eval(recipe: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["eval", str(recipe), "--checkpoint", str(tmp_path / "model"), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predictions_rank_every_candidate_best_first(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path)
    out = tmp_path / "out" / "predictions.jsonl"
    code, stdout, _ = _eval(recipe, tmp_path, capsys, "--predictions", str(out))
    assert code == 0 and orjson.loads(stdout)["predictions"] == str(out)
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(f"{label}/{copy}.png" for label in LABELS for copy in range(2))
    for row in rows:
        ranking = row["ranking"]
        assert sorted(entry["answer"] for entry in ranking) == sorted(LABELS)
        scores = [entry["score"] for entry in ranking]
        assert scores == sorted(scores, reverse=True) and all(score <= 0 for score in scores)
        assert ranking[0]["answer"] == row["prediction"]


def test_beam_inference_still_writes_the_full_ranking(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path, inference="beam")
    out = tmp_path / "beam.jsonl"
    assert _eval(recipe, tmp_path, capsys, "--predictions", str(out))[0] == 0
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert all(len(row["ranking"]) == len(LABELS) and row["prediction"] in LABELS for row in rows)


def test_an_existing_predictions_file_is_kept_unless_overwrite(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path)
    out = tmp_path / "predictions.jsonl"
    out.write_text("keep me\n")
    code, stdout, err = _eval(recipe, tmp_path, capsys, "--predictions", str(out))
    assert code == 2 and stdout == "" and out.read_text() == "keep me\n"
    assert len(err.strip().splitlines()) == 1 and "--overwrite" in err and str(out) in err and "Traceback" not in err
    assert _eval(recipe, tmp_path, capsys, "--predictions", str(out), "--overwrite")[0] == 0
    assert len(out.read_bytes().splitlines()) == 2 * len(LABELS)

    # the default file, under the run's output_dir, is kept the same way
    assert _eval(recipe, tmp_path, capsys)[0] == 0
    default = tmp_path / "run" / "predictions-valid-model.jsonl"
    before = default.read_bytes()
    code, _, err = _eval(recipe, tmp_path, capsys)
    assert code == 2 and "--overwrite" in err and default.read_bytes() == before


def test_the_precision_is_applied_and_recorded_beside_the_predictions(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path)
    out = tmp_path / "int8.jsonl"
    code, stdout, err = _eval(recipe, tmp_path, capsys, "--predictions", str(out), "--precision", "int8")
    assert code == 0 and "left in fp32" in err  # the tiny model is too narrow for int8 to pay
    assert orjson.loads(stdout)["precision"] == "fp32"
    metadata = orjson.loads((tmp_path / "int8.jsonl.meta.json").read_bytes())
    assert metadata["precision"] == "fp32" and metadata["requested_precision"] == "int8"
    assert metadata["task"] == "classification" and metadata["checkpoint"] == str(tmp_path / "model")
