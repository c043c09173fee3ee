"""Checkpoints: a transformers directory plus the trainer's state, written atomically.

`checkpoint-<step>/` holds `save_pretrained` output (safetensors, config, processor) so
`from_pretrained` loads it as is, plus `optimizer.pt`, `scheduler.pt`, `scaler.pt`,
`rng_state_<rank>.pt` (all loadable with `weights_only=True`) and `trainer_state.json`.
It is written under a temporary name and renamed, so a directory named `checkpoint-<step>`
is always complete; a process killed mid-save leaves only a `.tmp-*` directory behind.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import orjson
import torch

from ofa_core._errors import OFAError
from ofa_core.inference.loading import STATE_FILE, list_checkpoints
from ofa_core.inference.loading import read_state as read_state  # the trainer reads states through ckpt


def rng_state() -> dict[str, Any]:
    """This process's random state as tensors and ints (weights_only-loadable)."""
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _fsync_dir(path: Path) -> None:
    for file in path.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


def write_checkpoint(
    output_dir: Path,
    step: int,
    model,
    processor,
    trainer_files: dict[str, Any],
    state: dict,
    weights: dict | None = None,
    delta: Any = None,
) -> Path:
    """Write `checkpoint-<step>` atomically; `trainer_files` maps file name -> object for `torch.save`.

    `weights`: the full state dict of a sharded model (otherwise the model's own is saved). `delta` (a
    `trainer.peft.PeftPlan`): write only the trained tensors and a reference to the base model, whose processor
    the delta uses.
    """
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".tmp-checkpoint-{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if delta is not None:
        delta.write(tmp, model, weights)
    else:
        model.save_pretrained(tmp, safe_serialization=True, **({"state_dict": weights} if weights is not None else {}))
    if processor is not None and delta is None:
        processor.save_pretrained(tmp)
    for name, value in trainer_files.items():
        torch.save(value, tmp / name)
    (tmp / STATE_FILE).write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def write_rank_file(checkpoint: Path, name: str, value: Any) -> None:
    """A per-process file (RNG) saved by non-main ranks into the finished directory."""
    tmp = checkpoint / f".{name}.tmp"
    torch.save(value, tmp)
    os.replace(tmp, checkpoint / name)


def resolve_resume(value: str | None, output_dir: Path) -> Path | None:
    """`auto` -> newest complete checkpoint (or None for a fresh run); a path must be a complete checkpoint."""
    if value is None:
        return None
    if value == "auto":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(value)
    if not (path / STATE_FILE).is_file():
        raise OFAError(
            f"training.resume_from_checkpoint: {path} is not a complete checkpoint (no {STATE_FILE}); "
            f"use 'auto' or a checkpoint-<step> directory"
        )
    return path


def load_file(checkpoint: Path, name: str) -> Any:
    return torch.load(checkpoint / name, map_location="cpu", weights_only=True)


def rotate(output_dir: Path, limit: int | None, keep: Path | None) -> None:
    """Delete the oldest checkpoints beyond `limit`, never the newest nor `keep` (the best one)."""
    if not limit:
        return
    found = list_checkpoints(output_dir)
    removable = [p for p in found[:-1] if keep is None or p.resolve() != keep.resolve()]
    for path in removable[: max(len(found) - limit, 0)]:
        shutil.rmtree(path, ignore_errors=True)
