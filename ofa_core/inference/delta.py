"""Parameter-efficient deltas: a directory holding only the trained parameters of a `peft` run plus the base model
they apply to, so a task costs megabytes instead of a model's size (docs/peft.md).

A delta is `adapter_config.json` (method and settings, the base model's path and the SHA-256 of its weights) and
`adapter_model.safetensors` (the trained tensors under the model's own parameter names). Loading one loads the base,
refuses it when its weights changed, builds the method's modules, loads the tensors and, for LoRA, merges the
low-rank updates into the weights: what runs is a plain `OFAForConditionalGeneration`.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Any

import orjson

from ofa_core._errors import OFAError
from ofa_core.recipe.peft import DELTA_CONFIG_FILE as CONFIG_FILE
from ofa_core.recipe.peft import model_settings, target_regex, trains

WEIGHTS_FILE = "adapter_model.safetensors"
FORMAT = "ofa-peft-1"
MERGEABLE = ("lora", "bitfit")
"""Methods whose delta folds into the base weights; prefix, prompt and adapter add modules a plain model lacks."""
_BASE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def is_delta(directory: Path) -> bool:
    return (Path(directory) / CONFIG_FILE).is_file()


def read_config(directory: Path) -> dict[str, Any]:
    """The delta's `adapter_config.json`, checked to be one this project wrote."""
    path = Path(directory) / CONFIG_FILE
    try:
        config = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise OFAError(f"{path}: not readable JSON ({error}); train the delta again or restore the file") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise OFAError(
            f"{path}: not a delta this project wrote (format "
            f"{config.get('format') if isinstance(config, dict) else None!r}, "
            f"expected {FORMAT!r}); an HF peft adapter of another model cannot be applied to OFA here"
        )
    return config


def base_hash(directory: Path) -> str:
    """SHA-256 over the base model's weight files (name and bytes, in name order): what a delta was trained on."""
    directory = Path(directory)
    files = sorted(
        p
        for p in directory.iterdir()
        if p.name in _BASE_WEIGHTS or (p.name.startswith("model-") and p.name.endswith(".safetensors"))
    )
    if not files:
        raise OFAError(
            f"{directory}: no model weights (model.safetensors) to apply a delta to; give the base model directory"
        )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def attach(model: Any, settings: dict[str, Any]) -> Any:
    """Add the method's trainable parts that the model config does not build (LoRA's low-rank layers, through HF
    peft, in place); returns the peft wrapper for LoRA (its `merge_and_unload` folds them in), else the model."""
    if settings["method"] != "lora":
        return model
    from peft import LoraConfig, get_peft_model

    names = [name for name, _ in model.named_modules()]
    for pattern in settings["targets"]:
        if not any(re.fullmatch(target_regex([pattern]), name) for name in names):
            raise OFAError(
                f"peft.targets: {pattern!r} matches no module (names look like "
                f"'model.decoder.layers.0.self_attn.q_proj' or 'q_proj')"
            )
    config = LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=target_regex(settings["targets"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' deprecation notices, raised inside peft
        try:
            return get_peft_model(model, config)
        except ValueError as error:
            raise OFAError(f"peft.targets: {error}") from None


def check_model_supports(model_config: Any, settings: dict[str, Any]) -> None:
    """A prefix, prompt or adapter delta needs the model's official PEFT modules (OFAConfig options)."""
    missing = [name for name in model_settings(settings) if not hasattr(model_config, name)]
    if missing:
        raise OFAError(
            f"peft.method {settings['method']!r}: this model configuration has no {missing[0]} option; "
            f"use bitfit or lora, or a version of the model with the official prompt and adapter modules"
        )


def trained_state(model: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The delta's tensors: every parameter the method trains, by name, on the CPU."""
    return {
        name: parameter.detach().to("cpu").contiguous()
        for name, parameter in model.named_parameters()
        if trains(settings, name)
    }


def write(
    directory: Path,
    model: Any,
    settings: dict[str, Any],
    base: Path,
    base_sha256: str,
    weights: dict[str, Any] | None = None,
) -> None:
    """Write the delta into `directory`: its tensors (`weights`, default: `trained_state(model)`) and config."""
    from safetensors.torch import save_file

    directory = Path(directory)
    save_file(
        weights if weights is not None else trained_state(model, settings),
        str(directory / WEIGHTS_FILE),
        metadata={"format": "pt"},
    )
    config = {
        "format": FORMAT,
        "peft_type": settings["method"].upper(),
        "method": settings["method"],
        "settings": settings,
        "base_model": str(Path(base).resolve()),
        "base_model_relative": os.path.relpath(Path(base).resolve(), directory.resolve()),
        "base_sha256": base_sha256,
        "model_config": model_settings(settings),
    }
    (directory / CONFIG_FILE).write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2) + b"\n")


def read_weights(directory: Path, device: str = "cpu") -> dict[str, Any]:
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise OFAError(f"{path}: missing; the delta directory is incomplete (train again or restore the file)")
    return load_file(str(path), device=device)


def load_weights(model: Any, weights: dict[str, Any], settings: dict[str, Any], where: Path) -> None:
    """Copy the delta's tensors into `model`; they must be exactly the parameters the method trains."""
    expected = {name for name, _ in model.named_parameters() if trains(settings, name)}
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise OFAError(
            f"{where}: the delta's tensors do not fit this model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); apply it to the base model and settings it was trained with"
        )
    model.load_state_dict(weights, strict=False)


def base_directory(directory: Path, config: dict[str, Any]) -> Path:
    """The base model a delta names: its recorded path, else the same path relative to the delta (moved together)."""
    recorded = Path(config["base_model"])
    for candidate in (recorded, Path(directory) / config.get("base_model_relative", recorded)):
        if (candidate / "config.json").is_file():
            return candidate
    raise OFAError(
        f"{Path(directory) / CONFIG_FILE}: base_model {recorded} is not a model directory (no config.json); "
        f"put the base model back there or edit base_model to where it is now"
    )


def load(directory: Path, overrides: dict | None = None, merge: bool = True) -> tuple[Any, Path, dict[str, Any]]:
    """(model, base directory, config) of a delta: the base with the delta applied; LoRA merged when `merge`.

    The base model's weights must hash as they did when the delta was trained."""
    from ofa_core.model.modeling import OFAForConditionalGeneration

    directory = Path(directory)
    config = read_config(directory)
    base = base_directory(directory, config)
    found = base_hash(base)
    if found != config["base_sha256"]:
        raise OFAError(
            f"{directory / CONFIG_FILE}: base model {base} has changed (weights SHA-256 {found[:12]}..., "
            f"the delta was trained on {config['base_sha256'][:12]}...); use the base it was trained on"
        )
    settings = config["settings"]
    model = OFAForConditionalGeneration.from_pretrained(base, **{**dict(overrides or {}), **config["model_config"]})
    check_model_supports(model.config, settings)
    wrapper = attach(model, settings)
    load_weights(model, read_weights(directory), settings, directory)
    if merge and wrapper is not model:
        model = wrapper.merge_and_unload()
    return model, base, config
