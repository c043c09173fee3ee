"""What would stop a run before its first step, found without loading weights or importing torch.

`ofa recipe validate` and `ofa run` (`--dry-run` included) call `check` after resolving the recipe: the model
directory's files (config, weights, tokenizer, image settings) and what they imply (vocabulary size, the
resolution the model can take, closed sets that tokenize alike), the data each needed split yields, empty
files, and the training settings that depend on the tasks, the processes or a checkpoint to resume. Every
problem is one `OFAError` naming the recipe, the JSON path and the fix; all are returned, none raised.
"""

from __future__ import annotations

import fnmatch
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core._errors import OFAError
from ofa_core.exported.manifest import is_exported
from ofa_core.generation.answer_tokens import JsonTokenizer, answer_ids
from ofa_core.plugin import PromptTemplate
from ofa_core.plugin._specs import PATH_METADATA
from ofa_core.recipe.peft import DELTA_CONFIG_FILE
from ofa_core.recipe.sections import Recipe

PATCH = 16
"""Pixels per image patch side: the ResNet embedding the images downsamples by 16."""
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
STATE_FILE = "trainer_state.json"
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
TIED = frozenset({"lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"})
"""Names of the shared embedding that a file may hold or leave out."""


@attrs.frozen
class ModelFiles:
    """What the checks of a task and of training need from the model directory, read without torch; None where a
    file is missing or unreadable."""

    tokenizer: JsonTokenizer | None
    parameters: frozenset[str] | None
    """Parameter names of the saved weights (BatchNorm statistics left out); None when the format hides them."""


def check(
    recipe: Recipe,
    parts: Sequence[dict[str, Any]],
    model_dir: Path | None,
    resume: Path | None,
    world_size: int | None = None,
    gpu: bool | None = None,
) -> list[OFAError]:
    """Every problem of the recipe's model, data and training that would stop `ofa run` before its first step.

    `parts` are each entry's resolved components (`Resolution.parts`): a check runs when what it needs resolved.
    `model_dir` is the checkpoint's model directory (a run directory already mapped to its checkpoint), None when
    that failed and was reported; `resume` the checkpoint training would resume from. `world_size` defaults to
    `$WORLD_SIZE` (torchrun's), `gpu` to whether a GPU device is visible."""
    world_size = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
    problems: list[str] = []
    files = model_files(model_dir, recipe.spec.model.overrides, problems) if model_dir is not None else None
    for index, found in enumerate(parts):
        problems += task_problems(recipe, index, found, files, world_size)
    problems += training_problems(recipe, files, resume, world_size, gpu_visible() if gpu is None else gpu)
    return [recipe.error(problem) for problem in problems]


def _read_json(path: Path, what: str, problems: list[str]) -> dict | None:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as error:
        problems.append(
            f"model.checkpoint: {path} is not readable JSON ({error}); restore the {what} from the "
            f"converted or saved model"
        )
        return None
    if not isinstance(data, dict):
        problems.append(f"model.checkpoint: {path} holds {type(data).__name__}, not the {what} object; restore it")
        return None
    return data


def model_files(directory: Path, overrides: dict, problems: list[str]) -> ModelFiles:
    """The model directory's tokenizer and weight names; what is missing or inconsistent in its files goes to
    `problems`."""
    fix = "convert the checkpoint with `ofa convert` or save the model and its processor with save_pretrained"
    if is_exported(directory):
        problems.append(
            f"model.checkpoint: {directory}: an exported ONNX folder; run it with --backend onnxruntime "
            "(backend='onnxruntime' in Python), or give the PyTorch model it was exported from"
        )
    config = _read_json(directory / "config.json", "model configuration", problems)
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        problems.append(f"model.checkpoint: {directory} has no weights ({' or '.join(WEIGHT_FILES[:2])}); {fix}")
    parameters = _parameter_names(directory, problems)
    tokenizer = None
    if not (directory / "tokenizer.json").is_file():
        problems.append(
            f"model.checkpoint: {directory} has no tokenizer.json: the processor (tokenizer + image "
            f"processor) must be saved with the model; {fix}"
        )
    else:
        try:
            tokenizer = JsonTokenizer(directory)
        except Exception as error:  # the tokenizers library raises a bare Exception for a corrupt file
            problems.append(f"model.checkpoint: {directory / 'tokenizer.json'} cannot be read ({error}); {fix}")
    if config is not None:
        config = {**config, **overrides}
        image_size = _image_size(directory, problems, fix)
        if image_size is not None:
            problems += resolution_problems(config, image_size, directory)
        vocab_size = config.get("vocab_size")
        if tokenizer is not None and isinstance(vocab_size, int) and len(tokenizer) > vocab_size:
            problems.append(
                f"model.checkpoint: the tokenizer has {len(tokenizer)} tokens but the model embeds only "
                f"{vocab_size} (config.json vocab_size); save the tokenizer the model was trained with"
            )
    return ModelFiles(tokenizer, parameters)


def _image_size(directory: Path, problems: list[str], fix: str) -> int | None:
    """The side images are resized to, from processor_config.json (or the older preprocessor_config.json)."""
    processor = _read_json(directory / "processor_config.json", "processor configuration", problems)
    settings = processor.get("image_processor") if processor is not None else None
    if not isinstance(settings, dict):
        settings = _read_json(directory / "preprocessor_config.json", "image processor configuration", problems)
    if settings is None:
        problems.append(
            f"model.checkpoint: {directory} has no image processor settings (processor_config.json or "
            f"preprocessor_config.json); {fix}"
        )
        return None
    size = settings.get("patch_image_size", 480)
    if not isinstance(size, int) or isinstance(size, bool) or size < PATCH:
        problems.append(
            f"model.checkpoint: the image processor's patch_image_size is {size!r}; give a whole number "
            f"of pixels of at least {PATCH}"
        )
        return None
    return size


def resolution_problems(config: dict, image_size: int, directory: Path) -> list[str]:
    """Images of `image_size` pixels must fit the model's table of patch positions, and agree with its config."""
    problems = []
    bucket = config.get("image_bucket_size", 42)
    side = math.ceil(image_size / PATCH)
    if isinstance(bucket, int) and side > bucket:
        problems.append(
            f"model.checkpoint: images resized to {image_size} px make {side}x{side} patches, more than this "
            f"model's {bucket}x{bucket} image positions (image_bucket_size); use a patch_image_size of at "
            f"most {bucket * PATCH} in {directory / 'processor_config.json'}"
        )
    declared = config.get("patch_image_size")
    if isinstance(declared, int) and declared != image_size:
        problems.append(
            f"model.checkpoint: the image processor resizes to {image_size} px but config.json says "
            f"patch_image_size {declared}; make the two agree (or set model.overrides.patch_image_size)"
        )
    return problems


def _parameter_names(directory: Path, problems: list[str]) -> frozenset[str] | None:
    """Names in the safetensors header (or its index), which is all that is read of the weights."""
    index = directory / "model.safetensors.index.json"
    single = directory / "model.safetensors"
    try:
        if index.is_file():
            names = orjson.loads(index.read_bytes())["weight_map"]
        elif single.is_file():
            with single.open("rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                names = orjson.loads(handle.read(length))
        else:
            return None
    except (OSError, KeyError, TypeError, orjson.JSONDecodeError) as error:
        problems.append(
            f"model.checkpoint: {index if index.is_file() else single} is not a readable safetensors "
            f"file ({error.__class__.__name__}); convert or save the model again"
        )
        return None
    return frozenset(name for name in names if name != "__metadata__" and not name.endswith(_BUFFERS))


def task_problems(
    recipe: Recipe, index: int, found: dict[str, Any], files: ModelFiles | None, world_size: int
) -> list[str]:
    """One task's closed set against the tokenizer, its empty files and the records of each split a run reads,
    each as far as the entry's parts (`found`, by `Resolved` field name) resolved."""

    def field(name: str) -> str:
        return recipe.spec.field(index, name)

    problems = []
    if found.get("closed_set") is not None and files is not None and files.tokenizer is not None:
        try:
            answer_ids(found["closed_set"], files.tokenizer)
        except OFAError as error:
            problems.append(f"{field('task.options')}: {error}")
    problems += [
        f"{field(where)}: {path} is empty; {fix}"
        for where, path, fix in (
            *_empty_files(found.get("reader_options"), "data.reader", "give the file its records or point at another"),
            *_empty_files(found.get("task_options"), "task.options", "write into it what the option needs"),
        )
    ]
    if problems or not all(name in found for name in ("task", "task_options", "prompt", "reader", "reader_options")):
        return problems
    splits = {"train": max(world_size, 1)}
    if recipe.training.eval_strategy != "no":
        splits["valid"] = 1
    for split, needed in splits.items():
        problems += _split_problems(recipe, index, found, split, needed)
    return problems


def _empty_files(options: Any, where: str, fix: str) -> list[tuple[str, str, str]]:
    """Path options naming an existing file of zero bytes."""
    if options is None or not attrs.has(type(options)):
        return []
    found = []
    for attribute in attrs.fields(type(options)):
        value = getattr(options, attribute.name)
        if attribute.metadata.get(PATH_METADATA) is not None and isinstance(value, str):
            path = Path(value)
            if path.is_file() and path.stat().st_size == 0:
                found.append((f"{where}.{attribute.name}", value, fix))
    return found


def _split_problems(recipe: Recipe, index: int, found: dict[str, Any], split: str, needed: int) -> list[str]:
    """Read all of `split` through the task's preprocess and the prompt's templates, as a run does before its first
    step: a record that would stop the run stops validation too."""
    reader = recipe.spec.field(index, "data.reader")
    why = (
        "training.eval_strategy is " + repr(recipe.training.eval_strategy) + ", so the run evaluates on it"
        if split == "valid"
        else "training reads it"
    )
    fix = (
        f"give the reader a {split} split, or set training.eval_strategy to 'no'"
        if split == "valid"
        else "check the reader's files"
    )
    kept = 0
    preprocess = found["task"].preprocess
    try:
        for record in found["reader"].open(found["reader_options"], split):
            if preprocess is not None:
                record = preprocess(record, split, found["task_options"])
            if record is None:
                continue
            kept += 1
            problem = _template_problem(recipe.spec.field(index, "task.prompt"), found["prompt"], record, split)
            if problem:
                return [problem]
    except OFAError as error:
        return [f"{reader}: the {split} split cannot be read ({why}): {_unprefixed(error, recipe)}"]
    if not kept:
        return [f"{reader}: the {split} split has no records ({why}); {fix}"]
    if kept < needed:
        return [
            f"training: {kept} train records make no batch for {needed} processes; give the train split at "
            f"least {needed} records or run fewer processes"
        ]
    return []


def _unprefixed(error: OFAError, recipe: Recipe) -> str:
    return str(error).removeprefix(f"{recipe.path}: ")


def _template_problem(where: str, prompt: PromptTemplate, record: dict, split: str) -> str | None:
    """The first of the prompt's templates that needs a field the record lacks, as a message."""
    for what, template in (
        ("source", prompt.source),
        ("target", prompt.target),
        ("decoder prefix", prompt.decoder_prefix),
    ):
        try:
            if template:
                template.format(**record)
        except KeyError as error:
            return (
                f"{where}: the {what} template {template!r} of prompt '{prompt.name}' needs field {error}, but "
                f"{split} record {record.get('id')!r} has {sorted(record)}; fix the reader or the prompt"
            )
    return None


def training_problems(
    recipe: Recipe, files: ModelFiles | None, resume: Path | None, world_size: int, gpu: bool
) -> list[str]:
    """Training settings that depend on the tasks, the processes, the device, the weights or the resumed checkpoint."""
    config = recipe.training
    problems = []
    if recipe.spec.multitask and "epoch" in (config.eval_strategy, config.save_strategy):
        problems.append(
            "training.eval_strategy / save_strategy: 'epoch' has no single meaning when several tasks "
            "share the steps; use 'steps' with eval_steps / save_steps"
        )
    if config.mixed_precision == "fp16" and not gpu:
        problems.append(
            "training.mixed_precision: fp16 needs a CUDA GPU (its GradScaler is CUDA-only) and none is "
            "visible; use 'bf16' or 'no' on CPU"
        )
    if files is not None and files.parameters is not None:
        for pattern in config.freeze_patterns:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in files.parameters):
                problems.append(
                    f"training.freeze_patterns: {pattern!r} matches no parameter (names look like "
                    f"'model.decoder.layers.0.fc1.weight')"
                )
        if files.parameters and all(config.freezes(name) for name in files.parameters):
            problems.append("training: every parameter is frozen; unfreeze something (freeze_* options)")
    if resume is not None:
        labels = [entry.name if recipe.spec.multitask else "" for entry in recipe.spec.entries]
        problems += resume_problems(resume, labels, world_size)
        if (resume / DELTA_CONFIG_FILE).is_file() != (recipe.spec.peft is not None):
            problems.append(
                f"training.resume_from_checkpoint: {resume} was written by a run "
                f"{'with' if recipe.spec.peft is None else 'without'} a peft section, this recipe has "
                f"{'none' if recipe.spec.peft is None else 'one'}; resume with the recipe that wrote it or start a "
                f"new output_dir"
            )
        if files is not None and files.parameters is not None:
            problems += _weight_problems(resume, files.parameters)
    return problems


def _weight_problems(checkpoint: Path, parameters: frozenset[str]) -> list[str]:
    """The checkpoint to resume from must hold this model's parameters, no more and no fewer."""
    saved = _parameter_names(checkpoint, [])
    if saved is None:
        return []
    missing, unexpected = sorted(parameters - saved - TIED), sorted(saved - parameters - TIED)
    if not missing and not unexpected:
        return []
    return [
        f"training.resume_from_checkpoint: {checkpoint} holds the weights of another model (missing {missing[:3]}, "
        f"unexpected {unexpected[:3]}); resume from a checkpoint of this recipe's model or start a new output_dir"
    ]


def resume_problems(checkpoint: Path, labels: list[str], world_size: int) -> list[str]:
    """A checkpoint to resume from must be complete, and written by as many processes for the same tasks."""
    try:
        state = orjson.loads((checkpoint / STATE_FILE).read_bytes())
    except FileNotFoundError:
        return [
            f"training.resume_from_checkpoint: {checkpoint} is not a complete checkpoint (no {STATE_FILE}); "
            f"use 'auto' or a checkpoint-<step> directory"
        ]
    except (OSError, orjson.JSONDecodeError) as error:
        return [
            f"training.resume_from_checkpoint: {checkpoint / STATE_FILE} is not readable JSON ({error}); "
            f"resume from another checkpoint"
        ]
    problems = []
    if state.get("world_size") != world_size:
        problems.append(
            f"training.resume_from_checkpoint: {checkpoint} was written by {state.get('world_size')} "
            f"processes, this run has {world_size}; resume with the same number of processes"
        )
    written = sorted(state["tasks"]) if isinstance(state.get("tasks"), dict) else [""]
    if written != sorted(labels):
        problems.append(
            f"training.resume_from_checkpoint: {checkpoint} was written for the tasks "
            f"{[label for label in written if label] or ['(one task)']}, this run has "
            f"{[label for label in sorted(labels) if label] or ['(one task)']}; resume with the same tasks "
            f"or start a new output_dir"
        )
    return problems


def gpu_visible() -> bool:
    """Whether a CUDA (or ROCm) device is there, judged from the device files (Linux, WSL's /dev/dxg, ROCm's
    /dev/kfd) and CUDA_VISIBLE_DEVICES, not torch."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(Path(device).exists() for device in ("/dev/nvidiactl", "/dev/dxg", "/dev/kfd"))
