"""The checkpoint's task settings (`cfg.task`, or `args` in older files) as an `ofa_task.json` record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ofa_core.convert.mapping import ConversionError
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.search import official_task_search
from ofa_core.model.task_config import PROMPT_TYPES, CheckpointTask

# fairseq task -> (built-in ofa_core task, how the official evaluation predicts).
_TASKS: dict[str, tuple[str | None, str]] = {
    "caption": ("caption", "beam_search"),
    "refcoco": ("grounding", "beam_search"),
    "ocr": ("ocr", "beam_search"),
    "gigaword": ("summarization", "beam_search"),
    "vqa_gen": ("vqa", "all_candidates"),
    "snli_ve": ("snli_ve", "all_candidates"),
    "image_classify": ("classification", "all_candidates"),
    **dict.fromkeys(("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2"), ("text_classification", "last_position")),
}


def _json_setting(task: dict[str, Any], name: str, path: Path) -> Any:
    """A setting fairseq stores as a JSON string (ans2label_dict, eval_args), parsed; None when absent."""
    value = task.get(name)
    if value is None or isinstance(value, dict):
        return value
    try:
        return orjson.loads(str(value))
    except orjson.JSONDecodeError:
        raise ConversionError(
            f"{path}: cfg.task.{name}={value!r} is not JSON; the official task could not read it "
            "either: fix the checkpoint's setting"
        ) from None


def _answers(task: dict[str, Any], path: Path) -> list[str] | None:
    """The inline answer list in label order; None when a file holds it or answers are open-ended."""
    if task.get("ans2label_file") or task.get("unconstrained_training"):
        return None
    labels = _json_setting(task, "ans2label_dict", path)
    if labels is None:
        return None
    if not isinstance(labels, dict) or sorted(labels.values()) != list(range(len(labels))):
        raise ConversionError(
            f"{path}: cfg.task.ans2label_dict={task['ans2label_dict']!r} does not number its "
            "answers 0..n-1; fix the checkpoint's setting"
        )
    return sorted(labels, key=labels.__getitem__)


def checkpoint_task(
    args: dict[str, Any], task: dict[str, Any], config: OFAConfig, path: Path, *, ema: bool
) -> CheckpointTask | None:
    """The task record of a checkpoint; None when the file names no task (then nothing decides outputs)."""
    settings = {**args, **task}  # older files keep the task settings among the model arguments
    name = task.get("_name") or args.get("task")
    if not name:
        return None
    prompt_type = settings.get("prompt_type") or "none"
    if prompt_type not in PROMPT_TYPES:
        raise ConversionError(f"{path}: cfg.task.prompt_type={prompt_type!r} is none of {', '.join(PROMPT_TYPES)}")
    ofa_task, inference = _TASKS.get(name, (None, None))
    if name == "vqa_gen" and (
        settings.get("unconstrained_training") or settings.get("val_inference_type", "allcand") == "beamsearch"
    ):
        inference = "beam_search"
    eval_args = _json_setting(settings, "eval_args", path) or {}
    return CheckpointTask(
        fairseq_task=name,
        task=ofa_task,
        language=config.language,
        search=official_task_search(name, config.language, args.get("arch") or args.get("_name")),
        inference=inference,
        patch_image_size=config.patch_image_size,
        image_mean=list(config.image_mean),
        image_std=list(config.image_std),
        max_src_length=int(settings.get("max_src_length") or 128),
        max_tgt_length=int(settings.get("max_tgt_length") or 30),
        prompt_type=prompt_type,
        add_object=bool(settings.get("add_object")),
        add_caption=bool(settings.get("add_caption")),
        answer_space=config.language == "en" and ofa_task in ("vqa", "classification"),
        max_object_length=settings.get("max_object_length") if name == "vqa_gen" else None,
        max_image_size=settings.get("max_image_size") if name == "refcoco" else None,
        answers=_answers(settings, path),
        ans2label_file=settings.get("ans2label_file"),
        unconstrained_training=bool(settings.get("unconstrained_training")),
        val_inference_type=settings.get("val_inference_type"),
        uses_ema=bool(settings.get("uses_ema")),
        weights="ema" if ema else "model",
        selected_cols=settings.get("selected_cols"),
        constraint_range=settings.get("constraint_range"),
        eval_args=eval_args if isinstance(eval_args, dict) else {},
        is_document=bool(settings.get("is_document")),
        bpe_dir=settings.get("bpe_dir"),
        source=path.name,
    )
