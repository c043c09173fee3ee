"""`model.checkpoint` (and `ofa eval --checkpoint`) may name a run directory: its best checkpoint, else its newest."""

from __future__ import annotations

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.inference.loading import STATE_FILE, NoModelError, model_directory

from .conftest import RECIPES


def fake_checkpoint(run, step: int, best: str | None) -> None:
    folder = run / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / STATE_FILE).write_bytes(orjson.dumps({"step": step, "best_checkpoint": best}))


def test_a_run_directory_resolves_to_its_best_checkpoint_else_its_newest(tmp_path):
    run = tmp_path / "run"
    fake_checkpoint(run, 10, None)
    fake_checkpoint(run, 20, "/elsewhere/old/location/checkpoint-10")  # the run was moved: found by name
    assert model_directory(run) == run / "checkpoint-10"
    assert model_directory(run / "checkpoint-20") == run / "checkpoint-20"  # a model directory stays itself
    (run / "checkpoint-10" / STATE_FILE).unlink()  # the best one was deleted or is incomplete
    assert model_directory(run) == run / "checkpoint-20"
    fake_checkpoint(run, 30, None)
    (run / ".tmp-checkpoint-40-1").mkdir()  # an interrupted save never counts
    assert model_directory(run) == run / "checkpoint-30"


def test_a_directory_without_model_or_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(
        NoModelError, match="neither a model directory .* nor a run directory with a finished checkpoint"
    ):
        model_directory(tmp_path)


@pytest.mark.parametrize("recipe", ["demo_vqa.json", "demo_classification.json"])
def test_the_demo_steps_after_captioning_say_to_train_the_caption_model_first(recipe, small_demo, tmp_path, capsys):
    missing = [
        "--set",
        f"model.checkpoint={tmp_path / 'runs' / 'demo_caption'}",
        "--set",
        f"output_dir={tmp_path / 'out'}",
    ]
    assert main(["run", str(RECIPES / recipe), *missing]) == 2
    err = capsys.readouterr().err
    assert (
        "model.checkpoint" in err and "not found" in err and "python -m ofa_core run recipes/demo_caption.json" in err
    )
    (tmp_path / "runs" / "demo_caption").mkdir(parents=True)  # started, but no checkpoint yet
    assert main(["run", str(RECIPES / recipe), *missing]) == 2
    err = capsys.readouterr().err
    assert (
        "no config.json" in err and "python -m ofa_core run recipes/demo_caption.json" in err and "Traceback" not in err
    )
