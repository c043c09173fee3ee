"""Export an `ofa_core` model directory as a checkpoint in the official fairseq layout.

The file holds what fairseq's loader expects: the `model` state dict under fairseq names
(three embedding copies, `version` counters, the index buffers), `cfg['model']` as an
argparse Namespace and `cfg['task']` as a dict, plus empty training bookkeeping. When the
directory was converted from fairseq, the original model/task settings saved beside the
weights are reused, so task settings fairseq needs (prompt type, bpe dir...) survive.
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ofa_core.model.configuration import OFAConfig
from ofa_core.convert.fairseq import ARCH_DEFAULTS, ARCH_SIZES, IMAGENET_MEAN
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
from ofa_core.convert.writer import atomic_file
from ofa_core.model.errors import OFAError

# Written into converted directories: the fairseq model args and task settings they came from.
ORIGIN_FILE = "fairseq_origin.json"


class ExportError(OFAError):
    """The directory cannot be exported to fairseq."""


def model_args(config: OFAConfig, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """fairseq model arguments reproducing `config`, layered over the original ones when known."""
    sizes = {"encoder_embed_dim": config.d_model, "encoder_layers": config.encoder_layers,
             "decoder_layers": config.decoder_layers, "encoder_attention_heads": config.encoder_attention_heads,
             "decoder_attention_heads": config.decoder_attention_heads, "resnet_type": config.resnet_type}
    # fairseq fills unset sizes from the arch; every size is set explicitly, so the name only needs to exist.
    arch = (base or {}).get("arch") or next((name for name, values in ARCH_SIZES.items() if values == sizes),
                                            "ofa_large")
    derived = {
        **sizes,
        "arch": arch,
        "_name": arch,
        "decoder_embed_dim": config.d_model,
        "encoder_ffn_embed_dim": config.encoder_ffn_dim,
        "decoder_ffn_embed_dim": config.decoder_ffn_dim,
        "activation_fn": config.activation_function,
        "max_source_positions": config.max_position_embeddings,
        "max_target_positions": config.max_position_embeddings,
        "resnet_drop_path_rate": config.resnet_drop_path_rate,
        "token_bucket_size": config.token_bucket_size,
        "image_bucket_size": config.image_bucket_size,
        "attn_scale_factor": config.attn_scale_factor,
        "code_image_size": config.code_image_size,
        "entangle_position_embedding": config.entangle_position_embedding,
        "disable_entangle": config.disable_entangle,
        "interpolate_position": config.interpolate_position,
        "orig_patch_image_size": config.orig_patch_image_size,
        "scale_attn": config.scale_attn,
        "scale_fc": config.scale_fc,
        "scale_heads": config.scale_heads,
        "scale_resids": config.scale_resids,
        "layernorm_embedding": config.layernorm_embedding,
        "patch_layernorm_embedding": config.patch_layernorm_embedding,
        "code_layernorm_embedding": config.code_layernorm_embedding,
        "add_type_embedding": config.add_type_embedding,
        "no_scale_embedding": not config.scale_embedding,
        "dropout": config.dropout,
        "attention_dropout": config.attention_dropout,
        "activation_dropout": config.activation_dropout,
        "encoder_drop_path_rate": config.encoder_drop_path_rate,
        "decoder_drop_path_rate": config.decoder_drop_path_rate,
        "share_decoder_input_output_embed": True,
        **task_settings(config),
    }
    # Settings the config does not describe (sync_bn, freeze_resnet...) keep their original values.
    return {**ARCH_DEFAULTS, **(base or {}), **derived}


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


def fairseq_state_dict(config: OFAConfig, state: dict[str, torch.Tensor], frozen_batch_norm: bool = False
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
    buffers = expected_buffers(config.token_bucket_size, config.image_bucket_size, config.code_image_size,
                               FAIRSEQ_POSITION_TAIL)
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


def export_fairseq(directory: str | Path, out: str | Path) -> dict[str, Any]:
    """Write `out` (atomically) from the model directory; returns a summary for the report."""
    from ofa_core.model.modeling import OFAForConditionalGeneration

    directory, out = Path(directory), Path(out)
    if not (directory / "config.json").is_file():
        raise ExportError(f"{directory}: no config.json; pass a directory written by 'convert fairseq' or "
                          "'convert port' (or save_pretrained)")
    if out.is_dir():
        raise ExportError(f"{out}: is a directory; pass the path of the .pt file to write")
    model = OFAForConditionalGeneration.from_pretrained(directory)
    config = model.config
    origin = _read_origin(directory)
    args = model_args(config, origin.get("fairseq_model_args"))
    state = fairseq_state_dict(config, model.state_dict(), frozen_batch_norm=bool(args.get("freeze_resnet")))
    # Without the original task, name the commonest one; fairseq tools can override it (--task).
    task = task_settings(config, origin.get("fairseq_task") or {"_name": "caption"})
    checkpoint = {
        "args": None,
        "cfg": {"_name": None, "model": argparse.Namespace(**args), "task": task},
        "model": state,
        "criterion": None,
        "optimizer_history": [{"criterion_name": "AdjustLabelSmoothedCrossEntropyCriterion",
                               "optimizer_name": "FairseqAdam", "lr_scheduler_state": {}, "num_updates": 0}],
        "task_state": {},
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}, "val_loss": None},
    }
    atomic_file(out, lambda temp: torch.save(checkpoint, temp))
    return {"keys": len(state), "parameters": sum(p.numel() for p in model.parameters()),
            "task": task.get("_name"), "from_origin": bool(origin)}
