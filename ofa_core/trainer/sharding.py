"""FSDP (torch's per-parameter `fully_shard`) for models too large to replicate on every process.

Each encoder and decoder layer is its own shard group, the rest (embeddings, ResNet, heads) is
the root's. Checkpoints stay in the ordinary transformers layout: full state dicts are gathered
for saving and scattered back on resume, so a sharded run resumes from, and saves, the same
directories as an unsharded one.
"""

from __future__ import annotations

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard

FULL = StateDictOptions(full_state_dict=True)
FULL_ON_CPU = StateDictOptions(full_state_dict=True, cpu_offload=True)


def shard(model: torch.nn.Module, reshard_after_forward: bool) -> None:
    """`reshard_after_forward=False` is ZeRO-2 ('shard_grad_op'): more memory, fewer all-gathers."""
    for layer in [*model.model.encoder.layers, *model.model.decoder.layers]:
        fully_shard(layer, reshard_after_forward=reshard_after_forward)
    fully_shard(model, reshard_after_forward=reshard_after_forward)


def full_model_state(model: torch.nn.Module, everywhere: bool = False) -> dict:
    """Collective: the unsharded weights, on rank 0 only (CPU) unless `everywhere`.

    Tied aliases (`lm_head.weight`, `*.embed_tokens.weight`) are left out, as `save_pretrained`
    of an unsharded model leaves them out, so both kinds of run write the same checkpoints.
    """
    state = get_model_state_dict(model, options=FULL if everywhere else FULL_ON_CPU)
    names = {name for name, _ in model.named_parameters()} | {name for name, _ in model.named_buffers()}
    return {key: value for key, value in state.items() if key in names}


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Collective: the unsharded optimizer state keyed by parameter names, on rank 0 (CPU)."""
    return get_optimizer_state_dict(model, optimizer, options=FULL_ON_CPU)


def load_full_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, weights: dict, optimizer_state: dict
) -> None:
    """Scatter full (unsharded) model and optimizer states, as saved, into the shards."""
    set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True, strict=False))
    # Parameters that never received a gradient (image-code tables) have no Adam state: not strict.
    set_optimizer_state_dict(
        model, optimizer, optimizer_state, options=StateDictOptions(full_state_dict=True, strict=False)
    )
