"""Export an `ofa_core` model directory as a checkpoint in the official fairseq layout.

The file is what the official code loads and evaluates like a released checkpoint: the `model` state dict
under fairseq names (three embedding copies, `version` counters, the index buffers), a cfg with every group
fairseq's tools read (`common` ... `simul_type`; `model` as an argparse Namespace, `task` as a dict), the EMA copy
`evaluate.py --ema-eval` reads where the task's script keeps one, and empty training bookkeeping. A directory
converted from fairseq keeps its checkpoint's whole cfg and float dtype; any other takes the cfg of the official
fine-tuning script of its task (`official_cfg.json`).
"""

from __future__ import annotations

import argparse
import copy
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ofa_core._errors import OFAError
from ofa_core.convert.fairseq import (
    ARCH_DEFAULTS,
    ARCH_SIZES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SAME_SETTINGS,
    derive_config,
)
from ofa_core.convert.keys import (
    FAIRSEQ_EMBEDDINGS,
    FAIRSEQ_POSITION_TAIL,
    OFA_EMBEDDINGS,
    OFA_SHARED,
    VERSION_BUFFERS,
    expected_buffers,
    ofa_to_port,
    port_to_fairseq,
)
from ofa_core.convert.official_cfg import NAMESPACE_MARK, entry_for, official_cfg, official_tasks, script_of
from ofa_core.convert.writer import atomic_file
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.task_config import TASK_CONFIG_FILE, TaskConfigError, read_checkpoint_task
from ofa_core.recipe.peft import DELTA_CONFIG_FILE

# Written into converted directories: the fairseq model args and task settings they came from.
ORIGIN_FILE = "fairseq_origin.json"


class ExportError(OFAError):
    """The directory cannot be exported to fairseq."""


def model_args(config: OFAConfig, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """fairseq model arguments reproducing `config`, layered over the original ones when known."""
    same = {arg: getattr(config, field) for field, arg, _ in SAME_SETTINGS}
    sizes = {name: same[name] for name in ARCH_SIZES["ofa_base"]}  # the settings an arch fixes (all set the same)
    # fairseq fills unset sizes from the arch; every size is set explicitly, so the name only needs to exist.
    arch = (base or {}).get("arch") or next(
        (name for name, values in ARCH_SIZES.items() if values == sizes), "ofa_large"
    )
    derived = {
        **same,
        "arch": arch,
        "_name": arch,
        "decoder_embed_dim": config.d_model,
        "decoder_input_dim": config.d_model,
        "decoder_output_dim": config.d_model,
        "max_target_positions": config.max_position_embeddings,
        "no_scale_embedding": not config.scale_embedding,
        "share_decoder_input_output_embed": True,
        "vocab_size": config.vocab_size,
        **peft_args(config),
        **task_settings(config),
    }
    base = base or {}
    if config.language == "en" and base.get("bpe") is None:
        del derived["bpe"]  # the global --bpe choice; English scripts leave it unset (their task's bpe is gpt2)
    # Settings the config does not describe (sync_bn...) keep their original values. A key the original arguments
    # lack stays out when it says what its absence means (the model's default; vocab_size, which loading sets), so
    # a converted checkpoint's cfg comes back unchanged.
    return {
        key: value
        for key, value in {**ARCH_DEFAULTS, **base, **derived}.items()
        if not base or key in base or (key != "vocab_size" and ARCH_DEFAULTS.get(key, ...) != value)
    }


def peft_args(config: OFAConfig) -> dict[str, Any]:
    """The prompt and adapter flags of the modules the config has (an unused side stays at its defaults)."""
    args: dict[str, Any] = {}
    for side in ("encoder", "decoder"):
        if getattr(config, f"{side}_prompt"):
            args.update(
                {
                    f"{side}_prompt{field}": getattr(config, f"{side}_prompt{field}")
                    for field in ("", "_type", "_length", "_projection", "_dim")
                }
            )
    if config.adapter:
        args.update(adapter=True, adapter_dim=config.adapter_dim)
    return args


def task_settings(config: OFAConfig, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preprocessing half of the config in fairseq task terms."""
    return {
        **(base or {}),
        "bpe": "bert" if config.language == "zh" else "gpt2",
        "patch_image_size": config.patch_image_size,
        "imagenet_default_mean_and_std": list(config.image_mean) == IMAGENET_MEAN,
        "num_bins": config.num_bins,
        "code_dict_size": config.code_dict_size,
    }


def fairseq_state_dict(
    config: OFAConfig, state: dict[str, torch.Tensor], frozen_batch_norm: bool = False
) -> OrderedDict[str, torch.Tensor]:
    """ofa_core names -> fairseq names, with the three embedding copies and the recomputed buffers.

    `frozen_batch_norm`: fairseq's FrozenBatchNorm2d (--freeze-resnet) has no `num_batches_tracked`.
    """
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, tensor in state.items():
        if key in OFA_EMBEDDINGS or (frozen_batch_norm and key.endswith(".num_batches_tracked")):
            continue
        out[port_to_fairseq(ofa_to_port(key))] = tensor.detach().clone()
    shared = state[OFA_SHARED].detach()
    for key in FAIRSEQ_EMBEDDINGS:
        out[key] = shared.clone()  # fairseq files store separate copies
    for key in VERSION_BUFFERS:
        out[key] = torch.tensor([3.0])
    buffers = expected_buffers(
        config.token_bucket_size, config.image_bucket_size, config.code_image_size, FAIRSEQ_POSITION_TAIL
    )
    out.update({key: value.clone() for key, value in buffers.items()})
    return out


def _read_origin(directory: Path) -> dict[str, Any]:
    file = directory / ORIGIN_FILE
    if not file.is_file():
        return {}
    try:
        origin = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ExportError(f"{file}: not valid JSON ({error}); delete it to export from config.json alone") from error
    return origin if isinstance(origin, dict) else {}


def _unrepresentable(directory: Path, config: OFAConfig) -> None:
    """Refuse, in one line, what a fairseq OFA checkpoint has no place for."""
    if (directory / DELTA_CONFIG_FILE).is_file():
        raise ExportError(
            f"{directory}: holds a parameter-efficient delta (adapter_config.json) that fairseq cannot "
            "represent; merge it into the base weights first and export the merged directory"
        )
    for side in ("encoder", "decoder"):
        if getattr(config, f"{side}_prompt") and getattr(config, f"{side}_prompt_type") != "prefix":
            raise ExportError(
                f"{directory / 'config.json'}: {side}_prompt_type "
                f"{getattr(config, f'{side}_prompt_type')!r}: official OFA builds only 'prefix' prompts "
                "(its --*-prompt-type choices); only a prefix-prompt model can be exported"
            )
    if list(config.image_mean) not in (IMAGENET_MEAN, [0.5, 0.5, 0.5]) or list(config.image_std) not in (
        IMAGENET_STD,
        [0.5, 0.5, 0.5],
    ):
        raise ExportError(
            f"{directory / 'config.json'}: image_mean {list(config.image_mean)} / image_std "
            f"{list(config.image_std)}: fairseq OFA knows only 0.5 or ImageNet's statistics "
            "(--imagenet-default-mean-and-std); set one of those before exporting"
        )


def _task_entry(directory: Path, config: OFAConfig, task: str | None) -> str:
    """The official script whose cfg the checkpoint gets: `task`, else the one of the model's ofa_task.json."""
    names = official_tasks()
    if task is not None:
        if task not in names:
            raise ExportError(f"--task {task}: not an official fine-tuning script; choose one of {', '.join(names)}")
        return task
    try:
        recorded = read_checkpoint_task(directory)
    except TaskConfigError as error:
        raise ExportError(f"{error}; or pass --task to choose the official script's cfg") from None
    if recorded is None:
        return "caption_cn" if config.language == "zh" else "caption"
    name = entry_for(recorded.fairseq_task, recorded.language)
    if name is None:
        raise ExportError(
            f"{directory / TASK_CONFIG_FILE}: fairseq task {recorded.fairseq_task!r} "
            f"({recorded.language}) has no official fine-tuning script to take a cfg from; "
            f"pass --task with one of {', '.join(names)}"
        )
    return name


def _exact_in(dtype: torch.dtype, state: dict[str, torch.Tensor]) -> bool:
    """Whether every float tensor survives a cast to `dtype` (weights changed since conversion may not)."""
    return all(
        torch.equal(value.to(dtype).to(value.dtype), value) for value in state.values() if value.is_floating_point()
    )


def _original_config(origin: dict[str, Any], config: OFAConfig, directory: Path) -> OFAConfig:
    """The config `convert fairseq` derived from the original arguments (the vocabulary as the weights have it)."""
    return derive_config(
        origin["fairseq_model_args"], origin.get("fairseq_task") or {}, config.vocab_size, config.language, directory
    )


def _language_of(cfg: dict[str, Any]) -> str:
    return "zh" if (cfg.get("task") or {}).get("bpe") == "bert" else "en"


def _base_cfg(directory: Path, config: Any, origin: dict, task: str | None) -> tuple[dict, str]:
    """The cfg to start from, and where it came from: the original checkpoint's, else the task's official one."""
    if isinstance(origin.get("fairseq_cfg"), dict) and task is None:
        return copy.deepcopy(origin["fairseq_cfg"]), "the original checkpoint's cfg"
    name = _task_entry(directory, config, task)
    cfg, source = official_cfg(name), f"official {name} ({script_of(name)})"
    if task is None and not (directory / TASK_CONFIG_FILE).is_file() and not origin:
        source += "; no task recorded with the model, --task chooses another"
    if origin.get("fairseq_task") and task is None:  # a checkpoint with `args` only, or converted before
        cfg["task"] = {**cfg["task"], **origin["fairseq_task"]}  # whole cfgs were kept
    return cfg, source


def _training_checkpoint(cfg: dict[str, Any], state: OrderedDict) -> dict[str, Any]:
    """The dict fairseq's `checkpoint_utils` saves, with empty training bookkeeping (and the EMA copy
    `evaluate.py --ema-eval` reads where the cfg keeps one)."""
    extra_state: dict[str, Any] = {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}, "val_loss": None}
    if (cfg.get("ema") or {}).get("store_ema"):
        extra_state["ema"] = OrderedDict((key, value.clone()) for key, value in state.items())
    return {
        "args": None,
        "cfg": cfg,
        "model": state,
        "criterion": None,
        "optimizer_history": [
            {
                "criterion_name": "AdjustLabelSmoothedCrossEntropyCriterion",
                "optimizer_name": "FairseqAdam",
                "lr_scheduler_state": {},
                "num_updates": 0,
            }
        ],
        "task_state": {},
        "extra_state": extra_state,
    }


def export_fairseq(directory: str | Path, out: str | Path, task: str | None = None) -> dict[str, Any]:
    """Write `out` (atomically) from the model directory; returns a summary for the report.

    The cfg is the one the model came with (a directory converted from fairseq keeps its checkpoint's whole cfg),
    else the official fine-tuning script's for its task (`task`, or the task of its ofa_task.json); the model
    arguments are then rewritten from config.json, so the file describes exactly these weights.
    """
    from ofa_core.model.modeling import OFAForConditionalGeneration

    directory, out = Path(directory), Path(out)
    if not (directory / "config.json").is_file():
        raise ExportError(
            f"{directory}: no config.json; pass a directory written by 'convert fairseq' or "
            "'convert port' (or save_pretrained)"
        )
    if out.is_dir():
        raise ExportError(f"{out}: is a directory; pass the path of the .pt file to write")
    # Before loading: transformers would try to apply a directory's adapter_config.json itself.
    _unrepresentable(directory, OFAConfig.from_pretrained(directory))
    model = OFAForConditionalGeneration.from_pretrained(directory)
    config = model.config
    weights = model.state_dict()
    origin = _read_origin(directory)
    original_args = origin.get("fairseq_model_args") if task is None else None
    cfg, source = _base_cfg(directory, config, origin, task)
    if _language_of(cfg) != config.language and (task is not None or not origin):
        raise ExportError(
            f"--task: its script is for {_language_of(cfg)} models, this model is {config.language}; "
            f"choose the {config.language} variant (one of {', '.join(official_tasks())})"
        )
    base = original_args or {k: v for k, v in (cfg.get("model") or {}).items() if k != NAMESPACE_MARK}
    args = model_args(config, base)
    if original_args and args == model_args(_original_config(origin, config, directory), base):
        args = dict(base)  # the weights' config is the one the original arguments give: cfg back as it was
    else:
        cfg["task"] = task_settings(config, cfg.get("task") or {})
    cfg["model"] = argparse.Namespace(**args)
    state = fairseq_state_dict(config, weights, frozen_batch_norm=bool(args.get("freeze_resnet")))
    dtype = getattr(torch, str(origin.get("fairseq_dtype") or ""), None)
    if isinstance(dtype, torch.dtype) and _exact_in(dtype, state):  # back in the dtype the original file stored
        state = OrderedDict(
            (key, value.to(dtype) if value.is_floating_point() else value) for key, value in state.items()
        )
    checkpoint = _training_checkpoint(cfg, state)
    atomic_file(out, lambda temp: torch.save(checkpoint, temp))
    return {
        "keys": len(state),
        "parameters": sum(p.numel() for p in model.parameters()),
        "task": cfg["task"].get("_name"),
        "cfg_source": source,
        "from_origin": bool(origin),
    }
