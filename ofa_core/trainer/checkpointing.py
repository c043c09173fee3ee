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
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import torch

from ofa_core.errors import OFAError

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


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


def write_checkpoint(output_dir: Path, step: int, model, processor, trainer_files: dict[str, Any], state: dict,
                     weights: dict | None = None) -> Path:
    """Write `checkpoint-<step>` atomically; `trainer_files` maps file name -> object for `torch.save`.

    `weights`: the full state dict of a sharded model (otherwise the model's own is saved).
    """
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".tmp-checkpoint-{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True, **({"state_dict": weights} if weights is not None else {}))
    if processor is not None:
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


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest step first."""
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def resolve_resume(value: str | None, output_dir: Path) -> Path | None:
    """`auto` -> newest complete checkpoint (or None for a fresh run); a path must be a complete checkpoint."""
    if value is None:
        return None
    if value == "auto":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(value)
    if not (path / STATE_FILE).is_file():
        raise OFAError(f"training.resume_from_checkpoint: {path} is not a complete checkpoint (no {STATE_FILE}); "
                       f"use 'auto' or a checkpoint-<step> directory")
    return path


class NoModelError(OFAError):
    """A directory given as a model holds neither a model nor a finished checkpoint."""


def model_directory(path: str | Path) -> Path:
    """A model directory as is; a run directory (holding `checkpoint-<step>/`) -> its best checkpoint, else its newest.

    The best checkpoint is looked up by name inside `path`, so a run directory that was moved still resolves.
    """
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    found = list_checkpoints(path)
    if not found:
        raise NoModelError(f"{path}: neither a model directory (no config.json) nor a run directory with a finished "
                           f"checkpoint-<step>/; train its recipe first (ofa run RECIPE) or give a converted model directory")
    best = read_state(found[-1]).get("best_checkpoint")
    if best and (path / Path(best).name / STATE_FILE).is_file():
        return path / Path(best).name
    return found[-1]


def read_state(checkpoint: Path) -> dict:
    return orjson.loads((checkpoint / STATE_FILE).read_bytes())


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
