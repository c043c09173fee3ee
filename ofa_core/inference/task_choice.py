"""A registered task ready to predict with: its spec, the prompt of the chosen language and its options built.

`ofa predict` and `ofa_core.pipeline` check the same things before any weights load, with the names their
users typed in the messages (`--lang` on the command line, `lang` in Python). No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ofa_core.model.errors import OFAError
from ofa_core.plugin.specs import PromptTemplate, TaskSpec
from ofa_core.recipe import build_options


def choose_task(registry: Any, task: str, lang: str | None = None, options: Mapping[str, Any] | None = None, *,
                caller: str, lang_name: str = "lang", options_name: str = "options") -> tuple[TaskSpec, PromptTemplate, Any]:
    """(task spec, prompt, built options) of the registered task `task`, in `lang` (default: its first language).

    Unknown tasks get the registry's did-you-mean; a prompt with a decoder prefix is refused, since `caller`
    (named in the message) decodes from the start token.
    """
    if task not in registry.tasks:
        raise OFAError(registry.tasks.unknown_message(task))
    spec = registry.tasks.get(task)
    lang = lang or next(iter(spec.prompts))
    if lang not in spec.prompts:
        raise OFAError(f"{lang_name} {lang!r}: task '{task}' has prompts for {', '.join(spec.prompts)}")
    prompt = registry.prompts.get(spec.prompts[lang])
    if prompt.decoder_prefix:
        raise OFAError(f"prompt '{prompt.name}' has a decoder_prefix, which {caller} does not support yet")
    if options is not None and not isinstance(options, Mapping):
        raise OFAError(f"{options_name}: expected a dict of the task's options, e.g. {{'labels': [...]}}, got {options!r}")
    return spec, prompt, build_options(spec.options, dict(options or {}), options_name, Path.cwd())
