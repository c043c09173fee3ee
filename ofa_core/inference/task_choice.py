"""A registered task ready to predict with: its spec, the prompt of the chosen language and its options built.

`ofa predict` and `ofa_core.pipeline` check the same things before any weights load, with the names their
users typed in the messages (`--lang` on the command line, `lang` in Python). A converted official checkpoint's
`ofa_task.json` supplies what the user leaves out: the task, its language, prompt type and the options its
config decides. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ofa_core._errors import OFAError
from ofa_core.model.task_config import CheckpointTask
from ofa_core.plugin import PromptTemplate, TaskSpec
from ofa_core.recipe import build_options

_INFERENCE_OPTION = {"all_candidates": "rank", "beam_search": "beam", "last_position": "rank"}
"""How the official evaluation picked answers, as a closed-set task's `inference` option."""


_ANSWER_OPTIONS = ("answers", "answers_file", "labels", "labels_file")


def checkpoint_options(spec: TaskSpec, found: CheckpointTask, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The task options an official checkpoint's config decides: every field of the task's options class that
    `ofa_task.json` also records under the same name (e.g. VQA's `add_object`, an inline `answers` list, which a
    task with `labels` takes as those), and, when there are answers (recorded or `given`), a closed set's
    `inference` from the official evaluation's kind; an open-ended checkpoint decodes freely."""
    if spec.options is None:
        return {}
    names = {field.name for field in attrs.fields(spec.options)}
    values = {
        name: getattr(found, name)
        for name in names & {field.name for field in attrs.fields(CheckpointTask)}
        if name != "inference" and getattr(found, name) is not None
    }
    if found.answers is not None and "answers" not in names and "labels" in names:  # classification calls them labels
        values["labels"] = found.answers
    has_answers = any(name in values or name in (given or {}) for name in _ANSWER_OPTIONS)
    if "inference" in names and found.inference in _INFERENCE_OPTION and has_answers:
        values["inference"] = _INFERENCE_OPTION[found.inference]
    return values


def choose_task(
    registry: Any,
    task: str | None,
    lang: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    caller: str,
    lang_name: str = "lang",
    options_name: str = "options",
    prompt_type: str | None = None,
    checkpoint: CheckpointTask | None = None,
    task_name: str = "task",
) -> tuple[TaskSpec, PromptTemplate, Any]:
    """(task spec, prompt, built options) of the registered task `task`, in `lang` (default: its first language).

    `checkpoint` (a converted official checkpoint's task) fills in what is not given: the task, the language, the
    prompt type and the options its config decides; what the user gives wins. Unknown tasks get the registry's
    did-you-mean.
    """
    if task is None:
        if checkpoint is None or checkpoint.task is None:
            raise OFAError(
                f"{task_name}: not given, and the model directory has no ofa_task.json naming one; "
                f"pass a registered task (see 'ofa tasks')"
            )
        task = checkpoint.task
    if task not in registry.tasks:
        raise OFAError(registry.tasks.unknown_message(task))
    spec = registry.tasks.get(task)
    from_checkpoint = checkpoint is not None and checkpoint.task == task
    if lang is None and from_checkpoint and checkpoint.language in spec.prompts:
        lang = checkpoint.language
    lang = lang or next(iter(spec.prompts))
    if lang not in spec.prompts:
        raise OFAError(f"{lang_name} {lang!r}: task '{task}' has prompts for {', '.join(spec.prompts)}")
    prompt = registry.prompts.get(spec.prompts[lang])
    if prompt_type is None and from_checkpoint:
        prompt_type = checkpoint.prompt_type
    if prompt_type is not None and prompt_type != prompt.prompt_type:
        if prompt.decoder_prefix:
            raise OFAError(
                f"prompt '{prompt.name}' has its own decoder_prefix, so prompt type {prompt_type!r} cannot apply"
            )
        prompt = attrs.evolve(prompt, prompt_type=prompt_type)
    if options is not None and not isinstance(options, Mapping):
        raise OFAError(
            f"{options_name}: expected a dict of the task's options, e.g. {{'labels': [...]}}, got {options!r}"
        )
    values = {**(checkpoint_options(spec, checkpoint, options) if from_checkpoint else {}), **dict(options or {})}
    return spec, prompt, build_options(spec.options, values, options_name, Path.cwd())
