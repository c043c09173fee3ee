"""`ofa predict` at scale: unique relative ids, bad images skipped or fatal, resume, progress, and torchrun
sharding that writes the same file as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.testing import fake_image, tiny_checkpoint

COMMON = [
    "--task",
    "caption",
    "--lang",
    "en",
    "--generation",
    "max_new_tokens=3",
    "--generation",
    "num_beams=1",
    "--batch-size",
    "2",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """photos/2.png, photos/a/0.png, photos/a/b/1.png, photos/a/b/3.jpg, photos/c/4.png (and a hidden file)."""
    root = tmp_path_factory.mktemp("inputs") / "photos"
    for seed, relative in enumerate(["a/0.png", "a/b/1.png", "2.png", "a/b/3.jpg", "c/4.png"]):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        fake_image(seed, (48, 32)).save(root / relative)
    (root / ".cache").mkdir()
    fake_image(9, (48, 32)).save(root / ".cache" / "ignored.png")
    return root


ORDER = ["2", "a/0", "a/b/1", "a/b/3", "c/4"]  # sorted relative paths, without suffixes


def predict(capsys, model: Path, *argv: str) -> tuple[int, str]:
    code = main(["predict", "--model", str(model), *COMMON, *argv])
    return code, capsys.readouterr().err


def rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_ids_are_unique_relative_paths_and_duplicates_name_both_sources(model, photos, tmp_path, capsys):
    single = tmp_path / "single.png"
    fake_image(7, (48, 32)).save(single)
    tsv = tmp_path / "more.tsv"
    tsv.write_text(f"id\timage\nt1\t{single.name}\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, err = predict(capsys, model, str(photos), str(single), str(tsv), "-o", str(out))
    assert code == 0, err
    assert [row["id"] for row in rows(out)] == [*ORDER, "single", "t1"]
    assert rows(out)[2]["image"] == str(photos / "a" / "b" / "1.png")
    assert "7 images in " in err and "images/s, model loading excluded); 0 skipped" in err

    other = tmp_path / "other"
    (other / "a").mkdir(parents=True)
    fake_image(8, (48, 32)).save(other / "a" / "0.png")
    code, err = predict(capsys, model, str(photos), str(other), "-o", str(tmp_path / "dup.jsonl"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (
        err.startswith("error: duplicate id 'a/0': ")
        and str(photos / "a" / "0.png") in err
        and str(other / "a" / "0.png") in err
    )
    assert not (tmp_path / "dup.jsonl").exists()


def test_a_corrupt_image_is_skipped_and_reported_or_fatal_with_strict(model, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        fake_image(index, (48, 32)).save(folder / f"{index}.png")
    (folder / "1b.png").write_bytes(b"not an image at all")
    out = tmp_path / "out.jsonl"
    code, err = predict(capsys, model, str(folder), "-o", str(out))
    assert code == 0, err
    assert [row["id"] for row in rows(out)] == ["0", "1", "2"]
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert skipped == [
        line for line in skipped if line.startswith(f"skipped {folder / '1b.png'}: not a readable image")
    ]
    assert len(skipped) == 1 and "3 images in " in err and "; 1 skipped" in err

    code, err = predict(capsys, model, str(folder), "-o", str(tmp_path / "strict.jsonl"), "--strict")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {folder / '1b.png'}: not a readable image") and "--strict" in err
    assert not (tmp_path / "strict.jsonl").exists()


def test_resume_predicts_only_the_missing_ids(model, photos, tmp_path, capsys):
    full = tmp_path / "full.jsonl"
    assert predict(capsys, model, str(photos), "-o", str(full))[0] == 0
    lines = full.read_bytes().splitlines(keepends=True)

    out = tmp_path / "out.jsonl"
    out.write_bytes(lines[0] + lines[1] + lines[2][:10])  # a run cut off while writing its third row
    leftover = out.with_name(f".{out.name}.part-0123abcd-1")  # an interrupted run's part: a row for 'a/b/3'
    leftover.write_bytes(lines[3] + b'{"id": "c/')
    code, err = predict(capsys, model, str(photos), "-o", str(out))
    assert code == 2 and "already exists; pass --overwrite to replace it, --resume" in err

    code, err = predict(capsys, model, str(photos), "-o", str(out), "--resume")
    assert code == 0, err
    assert "resume: 3 of 5 inputs already predicted (1 of them in an interrupted run's part files); 2 to go" in err
    assert "2 images in " in err, "only 'a/b/1' and 'c/4' are predicted"
    assert [row["id"] for row in rows(out)] == ORDER
    assert out.read_bytes() == full.read_bytes()
    assert not leftover.exists() and not list(tmp_path.glob(".out.jsonl.*"))

    code, err = predict(capsys, model, str(photos), "-o", str(out), "--resume")
    assert code == 0 and "0 images in " in err and out.read_bytes() == full.read_bytes()


def test_progress_lines_when_stderr_is_not_a_terminal(model, photos, tmp_path, capsys):
    code, err = predict(capsys, model, str(photos), "-o", str(tmp_path / "out.jsonl"), "--progress-every", "2")
    assert code == 0, err
    progress = [line for line in err.splitlines() if line.startswith("predict: ")]
    assert [line.split(",")[0] for line in progress] == ["predict: 2/5 images", "predict: 4/5 images"]
    assert all(" images/s, ETA " in line for line in progress)


def test_two_processes_write_the_same_rows_in_the_same_order_as_one(model, photos, tmp_path, capsys):
    (photos.parent / "bad").mkdir(exist_ok=True)
    (photos.parent / "bad" / "broken.png").write_bytes(b"\x89PNG broken")
    inputs = [str(photos), str(photos.parent / "bad")]
    one = tmp_path / "one.jsonl"
    code, err = predict(capsys, model, *inputs, "-o", str(one))
    assert code == 0 and "; 1 skipped" in err, err

    two = tmp_path / "two.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "ofa_core",
            "predict",
            "--model",
            str(model),
            *COMMON,
            *inputs,
            "-o",
            str(two),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert two.read_bytes() == one.read_bytes()
    assert f"skipped {photos.parent / 'bad' / 'broken.png'}: " in result.stderr
    assert "5 images in " in result.stderr and "; 1 skipped" in result.stderr
    assert not list(tmp_path.glob(".two.jsonl*")), "the part files are merged and removed"
