"""`ofa eval` needs what the evaluation reads, nothing more: every official recipe evaluates as its docs page says
(`--checkpoint DIR --set data.reader.valid=FILE.tsv --predictions OUT.jsonl`) with only a model directory, that
TSV and the task's own files (VQA's answers, ImageNet's labels) on disk; the recipe's `model.checkpoint`, other
splits, loss files and training settings are neither checked nor applied. `ofa run` and `ofa recipe validate`
still check everything a training run needs."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import orjson
import pytest

from ofa_core.cli import main
from ofa_core.testing import fake_image, tiny_checkpoint
from ofa_tasks.text_classification.glue import GLUE

REPO = Path(__file__).resolve().parents[2]
# The parameter-efficient training recipes (refcoco_prefix...) evaluate as the recipe they extend, with their
# modules in the checkpoint; tests/official/test_parity.py checks them through its PEFT cases.
OFFICIAL = sorted(
    path.stem
    for path in (REPO / "recipes" / "official").glob("*.json")
    if "peft" not in orjson.loads(path.read_bytes())
)
ROWS = 2


def photo(seed: int) -> str:
    """A JPEG as the official TSVs store images: URL-safe base64."""
    buffer = io.BytesIO()
    fake_image(seed, (48, 40)).save(buffer, format="JPEG")
    return base64.urlsafe_b64encode(buffer.getvalue()).decode()


def glue_row(dataset: str, index: int) -> list[str]:
    spec = GLUE[dataset]
    fields = ["x"] * (max(spec.columns) + 1)
    for column in spec.columns[:-1]:
        fields[column] = f"a fine movie number {index}"
    fields[spec.columns[-1]] = next(iter(spec.labels))
    return fields


# One official-layout row per recipe (the `selected_cols` of the recipe's reader), and the task files it reads.
LAYOUTS = {
    "caption": lambda i: [str(i), str(100 + i), "a red car&&the image", "car&&road", photo(i)],
    "vqa": lambda i: [str(i), str(200 + i), "what is it?", "1.0|!+yes&&0.5|!+no", "cat&&sofa", photo(i)],
    "refcoco": lambda i: [str(i), str(300 + i), "the red car", "2.0,3.0,30.0,25.0", photo(i)],
    "refcoco_cn": lambda i: [str(i), "红色的车", "2.0,3.0,30.0,25.0", photo(i)],
    "snli_ve": lambda i: [str(i), str(400 + i), photo(i), "a cat sits", "a cat on a sofa", "entailment"],
    "imagenet": lambda i: [photo(i), str(i), "goldfish"],
    "ocr_cn": lambda i: [str(i), photo(i), "红色的车"],
    "gigaword": lambda i: [f"the cat sat on the mat on day {i}", "cat sits"],
}
TASK_FILES = {
    "vqa": ("data/vqa_data/trainval_ans2label.json", {"yes": 0, "no": 1, "red": 2}),
    "imagenet": ("data/imagenet_1k_data/class2label_new.json", {"goldfish": 0, "tench": 1}),
}


def layout(recipe: str):
    if recipe.startswith("glue_"):
        return lambda i: glue_row(recipe.removeprefix("glue_"), i)
    return LAYOUTS.get("caption" if recipe.startswith("caption_") else recipe)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("converted") / "model")


def official_setup(tmp_path: Path, recipe: str) -> tuple[Path, Path]:
    """The recipes (a copy, so that output_dir lands in tmp_path), the valid TSV and the task's files; nothing else."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    rows = tmp_path / "rows" / f"{recipe}.tsv"
    rows.parent.mkdir()
    rows.write_text("".join("\t".join(layout(recipe)(i)) + "\n" for i in range(ROWS)), encoding="utf-8")
    if recipe in TASK_FILES:
        name, content = TASK_FILES[recipe]
        (tmp_path / name).parent.mkdir(parents=True)
        (tmp_path / name).write_bytes(orjson.dumps(content))
    return tmp_path / "recipes" / "official" / f"{recipe}.json", rows


def test_every_official_recipe_is_tested() -> None:
    missing = [recipe for recipe in OFFICIAL if layout(recipe) is None]
    assert OFFICIAL and not missing, f"add the row layout of {missing} to LAYOUTS"


@pytest.mark.parametrize("recipe", OFFICIAL)
def test_an_official_recipe_evaluates_with_only_the_model_and_the_valid_tsv(recipe, model, tmp_path, capsys) -> None:
    path, rows = official_setup(tmp_path, recipe)
    out = tmp_path / "out" / "predictions.jsonl"
    capsys.readouterr()
    code = main(
        ["eval", str(path), "--checkpoint", str(model), "--set", f"data.reader.valid={rows}", "--predictions", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = orjson.loads(captured.out)
    assert result["examples"] == ROWS and result["precision"] == "fp32"
    assert len(out.read_bytes().splitlines()) == ROWS
    assert orjson.loads((out.parent / "predictions.jsonl.meta.json").read_bytes())["precision"] == "fp32"
    # nothing but the scores' record (log.jsonl under output_dir) was written beside them
    assert {p.name for p in tmp_path.iterdir()} == {
        "recipes",
        "rows",
        "out",
        "runs",
        *(["data"] if recipe in TASK_FILES else []),
    }


def test_training_still_needs_everything(model, tmp_path, capsys) -> None:
    """`ofa recipe validate` and `ofa run` name the starting model and the train file the evaluation did not need."""
    path, rows = official_setup(tmp_path, "vqa")
    for command in (["recipe", "validate"], ["run"]):
        assert main([*command, str(path), "--set", f"data.reader.valid={rows}"]) == 2
        err = capsys.readouterr().err
        assert "model.checkpoint:" in err and "data.reader.train:" in err


def test_a_missing_valid_file_is_one_line_naming_it(model, tmp_path, capsys) -> None:
    path, _ = official_setup(tmp_path, "caption_coco")
    missing = tmp_path / "rows" / "nowhere.tsv"
    code = main(["eval", str(path), "--checkpoint", str(model), "--set", f"data.reader.valid={missing}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"data.reader.valid: {missing} not found" in err and "model.checkpoint" not in err


def test_the_split_evaluated_is_the_one_whose_file_is_needed(model, tmp_path, capsys) -> None:
    path, rows = official_setup(tmp_path, "refcoco")
    out = tmp_path / "out" / "test.jsonl"
    assert (
        main(
            [
                "eval",
                str(path),
                "--checkpoint",
                str(model),
                "--split",
                "test",
                "--set",
                f"data.reader.test={rows}",
                "--predictions",
                str(out),
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert orjson.loads(capsys.readouterr().out)["split"] == "test"
    assert (
        main(["eval", str(path), "--checkpoint", str(model), "--split", "test", "--set", f"data.reader.valid={rows}"])
        == 2
    )
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "data.reader.test:" in err and "refcoco_testA.tsv not found" in err


def test_a_missing_answers_file_is_one_line_naming_it(model, tmp_path, capsys) -> None:
    path, rows = official_setup(tmp_path, "vqa")
    answers = tmp_path / "data" / "vqa_data" / "trainval_ans2label.json"
    answers.unlink()
    code = main(["eval", str(path), "--checkpoint", str(model), "--set", f"data.reader.valid={rows}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"task.options.answers_file: {answers} not found" in err


def test_training_settings_are_neither_checked_nor_applied(model, tmp_path, capsys) -> None:
    """A bad optimizer value, a resume path that does not exist, an fp16 training precision on a CPU: not read.
    The settings evaluation reads are still checked, and an unknown key (perhaps a misspelt one of them) too."""
    path, rows = official_setup(tmp_path, "snli_ve")
    base = ["eval", str(path), "--checkpoint", str(model), "--set", f"data.reader.valid={rows}"]
    training_only = [
        "--set",
        "training.learning_rate=-1",
        "--set",
        "training.mixed_precision=fp16",
        "--set",
        f"training.resume_from_checkpoint={tmp_path / 'no-run' / 'checkpoint-9'}",
        "--set",
        "loss.name=no_such_loss",
        "--set",
        "model.checkpoint=$UNSET_MODEL_DIR/ofa",
    ]
    assert main([*base, *training_only, "--predictions", str(tmp_path / "a.jsonl")]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main([*base, "--set", "training.per_device_eval_batch_size=0"]) == 2
    assert "per_device_eval_batch_size" in capsys.readouterr().err
    assert main([*base, "--set", "training.per_device_eval_batchsize=4"]) == 2
    assert "training.per_device_eval_batchsize: unknown key" in capsys.readouterr().err
