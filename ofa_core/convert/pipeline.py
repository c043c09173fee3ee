"""From an imported checkpoint to a finished model directory: write, verify, then publish atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ofa_core.convert.mapping import Converted
from ofa_core.convert.to_fairseq import ORIGIN_FILE
from ofa_core.convert.verify import VerifyResult, verify_directory
from ofa_core.convert.writer import atomic_directory, build_model, write_preprocessing
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.search import special_token_ids
from ofa_core.model.task_config import TASK_CONFIG_FILE


@dataclass
class ConversionReport:
    source: str
    out: Path
    converted: Converted
    parameters: int
    files: list[str]
    tokenizer: str | None
    verify: VerifyResult | None
    notes: list[str] = field(default_factory=list)


def convert_to_directory(
    converted: Converted,
    source: str,
    out: Path,
    *,
    tokenizer=None,
    tokenizer_source: str | None = None,
    verify: bool = True,
) -> ConversionReport:
    """Write model.safetensors, config.json and preprocessing files into `out`; nothing appears on failure."""
    notes = list(converted.notes)
    with atomic_directory(out) as staging:
        model = build_model(converted.config, converted.state_dict)
        task = converted.task
        search = task.search if task else "default"
        model.generation_config = official_generation_config(search, **special_token_ids(converted.config))
        if task:
            notes.append(
                f"task: fairseq {task.fairseq_task!r} -> {TASK_CONFIG_FILE} (prompt type {task.prompt_type}, "
                f"{task.patch_image_size}px, {task.inference or 'unknown'} inference); generation defaults: "
                f"the official {search!r} search"
            )
        model.save_pretrained(staging)
        if task:
            task.write(staging)
        if "fairseq_model_args" in converted.origin:
            (staging / ORIGIN_FILE).write_text(
                json.dumps(converted.origin, indent=1, sort_keys=True, default=str), encoding="utf-8"
            )
        files = write_preprocessing(staging, converted.config, tokenizer)
        result = verify_directory(staging, model, converted.state_dict) if verify else None
    parameters = sum(parameter.numel() for parameter in model.parameters())
    return ConversionReport(source, out, converted, parameters, files, tokenizer_source, result, notes)
