"""Finding and loading a model: a model directory as is, or a run directory's best (else newest) checkpoint.

Shared by `ofa predict`, evaluation and training, which all accept either kind of directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core._errors import OFAError
from ofa_core.exported.manifest import is_exported
from ofa_core.inference.delta import CONFIG_FILE as DELTA_CONFIG

BACKENDS = ("torch", "onnxruntime")
"""What runs the network: PyTorch, or the graphs `ofa export onnx` wrote, in onnxruntime (CPU)."""
BACKEND_HELP = (
    "torch (default): the PyTorch model; onnxruntime: a folder written by `ofa export onnx`, on the CPU, "
    "--precision fp32 or int8 (with --int8 exported); see docs/export.md"
)
STATE_FILE = "trainer_state.json"
"""Written last into each `checkpoint-<step>/`: a checkpoint without it is incomplete."""
_NAME = re.compile(r"^checkpoint-(\d+)$")


def quiet_transformers() -> None:
    """Silence transformers' per-load and per-save progress bars, which would interleave with ours."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest step first."""
    if not output_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in output_dir.iterdir() if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def read_state(checkpoint: Path) -> dict:
    return orjson.loads((checkpoint / STATE_FILE).read_bytes())


class NoModelError(OFAError):
    """A directory given as a model holds neither a model nor a finished checkpoint."""


def model_directory(path: str | Path) -> Path:
    """A model directory (or a parameter-efficient delta, docs/peft.md) as is; a run directory (holding
    `checkpoint-<step>/`) -> its best checkpoint, else its newest.

    The best checkpoint is looked up by name inside `path`, so a run directory that was moved still resolves.
    """
    path = Path(path)
    if (path / "config.json").is_file() or (path / DELTA_CONFIG).is_file():
        return path
    found = list_checkpoints(path)
    if not found:
        raise NoModelError(
            f"{path}: neither a model directory (no config.json) nor a run directory with a finished "
            f"checkpoint-<step>/; train its recipe first (ofa run RECIPE) or give a converted model directory"
        )
    best = read_state(found[-1]).get("best_checkpoint")
    if best and (path / Path(best).name / STATE_FILE).is_file():
        return path / Path(best).name
    return found[-1]


def load_model(directory: str | Path, overrides: dict | None = None) -> tuple[Any, Any]:
    """(model, processor) from a model directory or a run directory; the processor must be saved with the model.

    `overrides` go to `from_pretrained` (config overrides such as dropout). A delta directory loads its base model
    with the delta applied (LoRA merged), the base's processor with it.
    """
    from ofa_core.model.modeling import OFAForConditionalGeneration

    directory = model_directory(directory)
    if (directory / DELTA_CONFIG).is_file():
        from ofa_core.inference import delta

        model, base, _ = delta.load(directory, overrides)
        return model, load_processor(base)
    if is_exported(directory):
        raise OFAError(
            f"{directory}: an exported ONNX folder; run it with --backend onnxruntime "
            f"(backend='onnxruntime' in Python), or give the PyTorch model it was exported from"
        )
    processor = load_processor(directory)
    return OFAForConditionalGeneration.from_pretrained(directory, **dict(overrides or {})), processor


def load_processor(directory: Path) -> Any:
    from ofa_core.model.processing import OFAProcessor

    try:
        return OFAProcessor.from_pretrained(directory)
    except (OSError, ValueError) as err:
        raise OFAError(
            f"{directory}: no processor (tokenizer + image processor) saved with the model ({err}); "
            f"convert with `ofa convert` or save one with processor.save_pretrained"
        ) from None


def default_device() -> Any:
    """Where inference runs unless told otherwise: the first GPU when there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@attrs.frozen
class Loaded:
    """A model ready for inference, its processor, and the precision it runs in."""

    model: Any
    processor: Any
    precision: Any
    """`ofa_core.model.precision.Applied`: requested and applied mode, and the notice when they differ."""


def load_for_inference(
    directory: str | Path,
    precision: str = "fp32",
    device: Any = None,
    option: str = "--precision",
    backend: str = "torch",
) -> Loaded:
    """The model in `directory` on `device` (default: `default_device()`) in `precision`, checked before loading.

    `option` names the setting in messages (`--precision` for the CLI, `precision` for the Python API). `backend`
    'onnxruntime' loads an exported folder's graphs instead (no PyTorch model code is imported).
    """
    if backend == "onnxruntime":
        return _load_exported(Path(directory), precision, device, option)
    if backend != "torch":
        raise OFAError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    from ofa_core.model.precision import apply, check

    device = default_device() if device is None else device
    check(precision, device, option)
    model, processor = load_model(directory)
    model, applied = apply(model, precision, device, option)
    return Loaded(model, processor, applied)


def _load_exported(directory: Path, precision: str, device: Any, option: str) -> Loaded:
    from ofa_core.exported.runtime import ExportedModel
    from ofa_core.model.precision import Applied

    if device is not None and str(device).split(":")[0] != "cpu":
        raise OFAError(f"device {device}: the onnxruntime backend runs on the CPU; use the CPU, or the torch backend")
    if not is_exported(directory):
        raise OFAError(
            f"{directory}: not an exported folder (no manifest.json); export it first with "
            f"`ofa export onnx --model {directory} --out DIR` and give DIR"
        )
    if precision not in ("fp32", "int8"):
        raise OFAError(
            f"{option} {precision}: the onnxruntime backend runs fp32 or int8 graphs; bf16 and fp16 are "
            f"torch backend modes"
        )
    model = ExportedModel.load(directory, precision)
    return Loaded(model, load_processor(directory), Applied(precision, precision))
