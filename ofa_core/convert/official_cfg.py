"""The complete checkpoint cfg of OFA's official fine-tuning scripts, for `convert to-fairseq`.

`official_cfg.json` beside this file was generated from OFA's `run_scripts/*/train_*.sh` by fairseq's own
training parser (tools/reference/official_cfg.py says how); reading it needs neither fairseq nor omegaconf.
A checkpoint written with one of these cfgs loads in the official code exactly as a released one does: every
group `evaluate.py` and `load_model_ensemble_and_task` read is there, with the script's values.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).with_name("official_cfg.json")

NAMESPACE_MARK = "__namespace__"
"""Marks a group fairseq stores as an argparse Namespace (the model's legacy arguments)."""

# ofa_task.json's fairseq task (and language) -> entry name, where the two differ.
_ENTRY_FOR = {
    ("caption", "zh"): "caption_cn",
    ("refcoco", "zh"): "refcoco_cn",
    **{
        (task, lang): f"glue_{task}"
        for task in ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2")
        for lang in ("en", "zh")
    },
}


@functools.cache
def _document() -> dict[str, Any]:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def official_tasks() -> list[str]:
    """The names `convert to-fairseq --task` accepts, one per official fine-tuning script."""
    return sorted(_document()["entries"])


def entry_for(fairseq_task: str, language: str) -> str | None:
    """The entry of a checkpoint's fairseq task in its language; None when no official script defines one."""
    name = _ENTRY_FOR.get((fairseq_task, language), fairseq_task)
    if name in _document()["entries"] and not (name in ("caption", "refcoco") and language == "zh"):
        return name
    return None


def official_cfg(name: str) -> dict[str, Any]:
    """A fresh copy of entry `name`'s full cfg (plain dicts; the model group marked with NAMESPACE_MARK)."""
    document = _document()
    entry = document["entries"][name]
    cfg = copy.deepcopy(document["base"])
    for group, values in copy.deepcopy(entry["changes"]).items():
        if isinstance(values, dict) and isinstance(cfg.get(group), dict):
            for key in values.pop("__removed__", ()):
                cfg[group].pop(key, None)
            cfg[group].update(values)
        else:
            cfg[group] = values
    return cfg


def script_of(name: str) -> str:
    """Where an entry came from, for the conversion summary."""
    entry = _document()["entries"][name]
    return entry["derived_from"] or entry["script"]
