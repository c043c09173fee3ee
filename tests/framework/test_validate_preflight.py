"""`ofa recipe validate` and `ofa run --dry-run` report everything that would stop `ofa run` before its first step.

`RUN_ERRORS` lists what a run can fail on before it trains (the recipe, the model directory, the data, the trainer's
set-up, resuming), each with the text of the code that raises it; `validate` must report every one, from the
model's files alone. A check below keeps the list complete: each raise in the trainer's set-up must be in it.
"""

from __future__ import annotations

import ast
import inspect
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import orjson
import pytest
from safetensors.numpy import save_file

from ofa_core import OFAError
from ofa_core.cli import main
from ofa_core.generation.answer_tokens import JsonTokenizer, answer_ids
from ofa_core.plugin import ClosedSet
from ofa_core.recipe import preflight
from ofa_core.testing import fake_image, tiny_checkpoint, tiny_processor

REPO = Path(__file__).parents[2]
LABELS = ["cat", "dog"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


def write_split(folder: Path, split: str, count: int, label: str | None = None) -> None:
    lines = []
    for index in range(count):
        fake_image(index).save(folder / f"{split}-{index}.png")
        row = {"id": f"{split}-{index}", "image": f"{split}-{index}.png", "label": label or LABELS[index % 2]}
        lines.append(orjson.dumps(row) + b"\n")
    (folder / f"{split}.jsonl").write_bytes(b"".join(lines))


@pytest.fixture
def recipe(tmp_path, model) -> dict:
    """A classification recipe a run can start from: a saved tiny model, 4 training and 2 validation images."""
    (tmp_path / "data").mkdir()
    write_split(tmp_path / "data", "train", 4)
    write_split(tmp_path / "data", "valid", 2)
    return {
        "model": {"checkpoint": str(model)},
        "task": {"name": "classification", "lang": "en", "options": {"labels": LABELS}},
        "data": {"reader": {"name": "classification_jsonl", "train": "data/train.jsonl", "valid": "data/valid.jsonl"}},
        "training": {"max_steps": 2, "eval_strategy": "steps", "report_to": "none"},
        "output_dir": "run",
    }


def validate(tmp_path: Path, recipe: dict, capsys, *verb: str) -> tuple[int, str, list[str]]:
    path = tmp_path / "recipe.json"
    path.write_bytes(orjson.dumps(recipe))
    argv = [*verb, str(path)] if verb else ["recipe", "validate", str(path)]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


# ---- changes that break the recipe -----------------------------------------------------------------------------


def setting(path: str, value) -> Callable[[dict, Path], None]:
    """Set the recipe value at dotted `path`."""

    def change(recipe: dict, folder: Path) -> None:
        *parents, key = path.split(".")
        node = recipe
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value

    return change


def removing(path: str) -> Callable[[dict, Path], None]:
    def change(recipe: dict, folder: Path) -> None:
        *parents, key = path.split(".")
        node = recipe
        for part in parents:
            node = node[part]
        del node[key]

    return change


def model_copy(recipe: dict, folder: Path) -> Path:
    """The recipe's model copied into the test's folder, for a change to its files."""
    copy = folder / "own-model"
    if not copy.exists():
        shutil.copytree(recipe["model"]["checkpoint"], copy)
        recipe["model"]["checkpoint"] = str(copy)
    return copy


def model_file(name: str, edit: Callable[[Path], None]) -> Callable[[dict, Path], None]:
    def change(recipe: dict, folder: Path) -> None:
        edit(model_copy(recipe, folder) / name)

    return change


def json_edit(**values) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        data = orjson.loads(path.read_bytes())
        for key, value in values.items():
            target = data["image_processor"] if "image_processor" in data else data
            target[key] = value
        path.write_bytes(orjson.dumps(data))

    return edit


def data_file(name: str, text: str) -> Callable[[dict, Path], None]:
    def change(recipe: dict, folder: Path) -> None:
        (folder / "data" / name).write_text(text)

    return change


def relabelled(recipe: dict, folder: Path) -> None:
    write_split(folder / "data", "train", 4, label="bird")


def mixture(recipe: dict, folder: Path) -> None:
    entry = {key: recipe.pop(key) for key in ("task", "data")}
    recipe["tasks"] = [{**entry, "label": "a"}, {**entry, "label": "b"}]
    recipe["training"]["eval_strategy"] = "epoch"


def checkpoint(state: dict | None, weights: dict | None = None) -> Callable[[dict, Path], None]:
    """A checkpoint `run/checkpoint-1` with this trainer state (None: none) and weights (None: the model's)."""

    def change(recipe: dict, folder: Path) -> None:
        saved = folder / "run" / "checkpoint-1"
        saved.mkdir(parents=True)
        if weights is None:
            shutil.copy(Path(recipe["model"]["checkpoint"]) / "model.safetensors", saved / "model.safetensors")
        else:
            save_file(weights, str(saved / "model.safetensors"))
        if state is not None:
            (saved / "trainer_state.json").write_bytes(
                orjson.dumps(
                    {
                        "step": 1,
                        "epoch": 0,
                        "batch_position": 0,
                        "world_size": 1,
                        "metrics": {},
                        "best_checkpoint": None,
                        "best_metric": None,
                        **state,
                    }
                )
            )
        recipe["training"]["resume_from_checkpoint"] = "auto" if state is not None else str(saved)

    return change


@attrs.frozen
class RunError:
    """Something `ofa run` fails on before its first step: where it is raised, a change that causes it, and what
    `validate` says about it."""

    raised_by: tuple[tuple[str, str], ...]
    """(file, text of the raising code): the first that exists is where a run raises it."""
    change: Callable[[dict, Path], None]
    reported: str
    environment: dict[str, str] = attrs.field(factory=dict)
    """Variables set for the check, e.g. torchrun's WORLD_SIZE."""


def at(file: str, text: str, *alternatives: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return ((file, text), *alternatives)


LOOP = "ofa_core/trainer/loop.py"
LOADING = "ofa_core/inference/loading.py"
ENCODER = "ofa_core/model/modeling/encoder.py"
CLOSED_SET = "ofa_core/generation/closed_set.py"
ANSWERS = "ofa_core/generation/answer_tokens.py"
RUN_ERRORS = [
    # recipe loading and resolution (recipe/loading.py, schema.py, paths.py, resolution.py)
    RunError(at("ofa_core/recipe/schema.py", "unknown key ("), setting("trainig", {}), "trainig: unknown key"),
    RunError(
        at("ofa_core/recipe/schema.py", "is not one of"),
        setting("training.lr_scheduler_type", "cosin"),
        "training.lr_scheduler_type: 'cosin' is not one of",
    ),
    RunError(
        at("ofa_core/recipe/paths.py", "not found (relative paths are resolved against"),
        setting("model.checkpoint", "missing"),
        "missing not found (relative paths are resolved against",
    ),
    RunError(
        at("ofa_core/recipe/resolution.py", "namespace.unknown_message(name)"),
        setting("task.name", "clasification"),
        "task.name: unknown task 'clasification'",
    ),
    RunError(
        at("ofa_core/recipe/resolution.py", "prompt ({hint}languages"),
        setting("task.lang", "fr"),
        "task.lang: task 'classification' has no 'fr' prompt",
    ),
    RunError(
        at("ofa_core/recipe/resolution.py", "namespace.unknown_message(name)"),
        setting("data.reader.name", "jsonl"),
        "data.reader: unknown reader 'jsonl'",
    ),
    RunError(
        at("ofa_core/recipe/resolution.py", "unknown official search"),
        setting("generation", "captoin"),
        "generation: unknown official search 'captoin'",
    ),
    # the model directory (trainer/from_recipe.py train -> inference/loading.py load_model)
    RunError(
        at(
            "ofa_core/trainer/from_recipe.py",
            'recipe.missing(f"model.checkpoint: {error}"',
            (LOADING, "neither a model directory"),
        ),
        lambda recipe, folder: (folder / "empty").mkdir() or recipe["model"].update(checkpoint="empty"),
        "empty: neither a model directory (no config.json)",
    ),
    RunError(
        at(LOADING, "an exported ONNX folder; run it with --backend onnxruntime"),
        model_file("manifest.json", lambda path: path.write_text("{}")),
        "an exported ONNX folder; run it with --backend onnxruntime",
    ),
    RunError(
        at(LOADING, "no processor (tokenizer + image processor)"),
        model_file("tokenizer.json", Path.unlink),
        "has no tokenizer.json",
    ),
    RunError(
        at(LOADING, "OFAForConditionalGeneration.from_pretrained(directory"),
        model_file("model.safetensors", Path.unlink),
        "has no weights",
    ),
    RunError(
        at(LOADING, "OFAForConditionalGeneration.from_pretrained(directory"),
        model_file("config.json", lambda path: path.write_text("{")),
        "config.json is not readable JSON",
    ),
    RunError(
        at(ENCODER, "image_position_ids(height, width, self.config.image_bucket_size"),
        lambda recipe, folder: [
            model_file(name, json_edit(patch_image_size=1024))(recipe, folder)
            for name in ("processor_config.json", "config.json")
        ],
        "make 64x64 patches, more than this model's 42x42 image positions",
    ),
    RunError(
        at(ENCODER, "self.embed_tokens(input_ids)"),
        model_file("config.json", json_edit(vocab_size=100)),
        "but the model embeds only 100",
    ),
    # the data (trainer/from_recipe.py _examples: the reader, the task's preprocess, the prompt)
    RunError(
        at("ofa_core/plugin/_records.py", "no file for the {split} split"),
        removing("data.reader.valid"),
        "data.reader.valid: no file for the valid split",
    ),
    RunError(
        at(LOOP, "has no examples; check its data.reader and files"),
        data_file("train.jsonl", ""),
        "train.jsonl is empty; give the file its records",
    ),
    RunError(
        at(LOOP, "has no examples; check its data.reader and files"),
        data_file("train.jsonl", "not json\n"),
        "data.reader: the train split has no records",
    ),
    RunError(
        at("ofa_tasks/classification/labels.py", "is not one of the {len(self.labels)} labels"),
        relabelled,
        "label 'bird' is not one of the 2 labels",
    ),
    RunError(
        at("ofa_core/data/encode.py", "needs field {err}"),
        setting("task.prompt", "vqa.en"),
        "task.prompt: the source template ' {question_en}' of prompt 'vqa.en' needs field 'question_en'",
    ),
    # the trainer's set-up (trainer/loop.py Trainer.__init__ and _prepare, freezing, resuming)
    RunError(
        at(CLOSED_SET, "_identical(noun", (ANSWERS, "identical(noun")),
        setting("task.options.labels", ["猪", "羊"]),
        "task.options: closed set: labels '猪' and '羊' both become [UNK]",
    ),
    RunError(
        at(CLOSED_SET, "tokenizes to nothing", (ANSWERS, "tokenizes to nothing")),
        setting("task.options.labels", ["\u200b", "dog"]),
        "tokenizes to nothing",
    ),
    RunError(at(LOOP, "fp16 needs a CUDA GPU"), setting("training.mixed_precision", "fp16"), "fp16 needs a CUDA GPU"),
    RunError(at(LOOP, "'epoch' has no single meaning"), mixture, "'epoch' has no single meaning"),
    RunError(
        at(LOOP, "make no batch for"),
        setting("training.per_device_train_batch_size", 1),
        "4 train records make no batch for 8 processes",
        {"WORLD_SIZE": "8"},
    ),
    RunError(
        at("ofa_core/trainer/freezing.py", "matches no parameter"),
        setting("training.freeze_patterns", ["model.nothing.*"]),
        "training.freeze_patterns: 'model.nothing.*' matches no parameter",
    ),
    RunError(
        at("ofa_core/trainer/freezing.py", "every parameter is frozen"),
        lambda recipe, folder: recipe["training"].update(freeze_patterns=["*"], freeze_word_embed=True),
        "training: every parameter is frozen",
    ),
    RunError(
        at("ofa_core/trainer/checkpointing.py", "is not a complete checkpoint"),
        checkpoint(None),
        "is not a complete checkpoint",
    ),
    RunError(
        at(LOOP, "was written by {data['world_size']} processes"),
        checkpoint({"world_size": 2}),
        "was written by 2 processes, this run has 1",
    ),
    RunError(
        at(LOOP, "was written for the tasks"),
        checkpoint({"tasks": {"x": {"epoch": 0, "batch_position": 0}}}),
        "was written for the tasks ['x']",
    ),
    RunError(
        at(LOOP, "was written by a run "),
        lambda recipe, folder: (
            checkpoint({})(recipe, folder),
            (folder / "run" / "checkpoint-1" / "adapter_config.json").write_text("{}"),
        ),
        "was written by a run with a peft section, this recipe has none",
    ),
    RunError(
        at(LOOP, "model weights do not match this model"),
        checkpoint({}, {"other.weight": np.zeros(2, dtype=np.float32)}),
        "holds the weights of another model",
    ),
]


@pytest.mark.parametrize("error", RUN_ERRORS, ids=[error.reported[:40] for error in RUN_ERRORS])
def test_validate_reports_every_error_a_run_stops_on_before_its_first_step(
    error, recipe, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(preflight, "gpu_visible", lambda: False)
    for name, value in error.environment.items():
        monkeypatch.setenv(name, value)
    error.change(recipe, tmp_path)
    code, _, lines = validate(tmp_path, recipe, capsys)
    assert code == 2 and any(error.reported in line for line in lines), lines
    assert all(line.startswith(f"error: {tmp_path / 'recipe.json'}: ") for line in lines), lines


@pytest.mark.parametrize("error", RUN_ERRORS, ids=[error.reported[:40] for error in RUN_ERRORS])
def test_each_listed_error_is_raised_where_the_list_says(error):
    assert any(text in (REPO / file).read_text() for file, text in error.raised_by if (REPO / file).is_file())


def _raises(function) -> list[str]:
    """The source of each `raise` of a user error in `function` (ValueError and TypeError are a caller's bug)."""
    source = textwrap.dedent(inspect.getsource(function))
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            name = ast.unparse(node.exc.func)
            if name not in ("ValueError", "TypeError"):
                found.append(ast.get_source_segment(source, node))
    return found


def test_the_list_holds_every_error_the_trainers_set_up_raises():
    from ofa_core.generation.closed_set import ClosedSetDecoder
    from ofa_core.inference import loading
    from ofa_core.trainer import checkpointing, freezing, from_recipe
    from ofa_core.trainer.loop import Trainer

    functions = [
        from_recipe.train,
        loading.model_directory,
        loading.load_model,
        Trainer.__init__,
        Trainer._prepare,
        Trainer._resume,
        checkpointing.resolve_resume,
        freezing.apply_freezing,
        ClosedSetDecoder.__init__,
    ]
    texts = [text for error in RUN_ERRORS for _, text in error.raised_by]
    unlisted = [
        raised for function in functions for raised in _raises(function) if not any(text in raised for text in texts)
    ]
    assert not unlisted, unlisted


def test_a_recipe_a_run_can_start_from_is_ok(recipe, tmp_path, capsys):
    code, out, lines = validate(tmp_path, recipe, capsys)
    assert (code, out, lines) == (0, f"{tmp_path / 'recipe.json'}: ok\n", [])
    code, out, lines = validate(tmp_path, recipe, capsys, "run", "--dry-run")
    assert code == 0 and out.startswith(f"{tmp_path / 'recipe.json'}: ok (task classification, output ") and not lines
    entry = {key: recipe.pop(key) for key in ("task", "data")}
    recipe["tasks"] = [{**entry, "label": "a"}, {**entry, "label": "b", "weight": 0.5}]
    code, out, lines = validate(tmp_path, recipe, capsys, "run", "--dry-run")
    assert code == 0 and "ok (tasks a, b," in out, lines


def test_run_stops_on_them_before_it_loads_the_model(recipe, tmp_path, capsys, monkeypatch):
    from ofa_core.trainer import from_recipe

    monkeypatch.setattr(from_recipe, "train", lambda *args: pytest.fail("the run started"))
    recipe["task"]["options"]["labels"] = ["猪", "羊"]
    code, _, lines = validate(tmp_path, recipe, capsys, "run")
    assert code == 2 and "both become [UNK]" in lines[0]


def test_the_image_processor_and_the_config_must_agree(recipe, tmp_path, capsys):
    model_file("config.json", json_edit(patch_image_size=96))(recipe, tmp_path)
    code, _, lines = validate(tmp_path, recipe, capsys)
    assert code == 2 and "the image processor resizes to 64 px but config.json says patch_image_size 96" in lines[0]
    recipe["model"]["overrides"] = {"patch_image_size": 64}
    assert validate(tmp_path, recipe, capsys)[0] == 0


def test_the_light_tokenizer_gives_the_models_ids_and_messages(model):
    tokenizer = tiny_processor().tokenizer
    light = JsonTokenizer(model)
    for text in ["a cat", " what does the image describe?", "猪 在 上", "<bin_7> dog"]:
        assert light(text, add_special_tokens=False) == {
            "input_ids": tokenizer(text, add_special_tokens=False)["input_ids"]
        }
    assert len(light) == len(tokenizer)
    for answers in (["猪", "羊"], ["cat", "cat "], ["\u200b", "cat"]):
        messages = []
        for candidate in (light, tokenizer):
            with pytest.raises(OFAError) as raised:
                answer_ids(ClosedSet(answers, noun="labels"), candidate)
            messages.append(str(raised.value))
        assert messages[0] == messages[1]
