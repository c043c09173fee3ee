"""Turn a source state dict (fairseq or port names) into a complete, checked `ofa_core` state dict.

Both importers share this step: tie the embedding copies (they must be equal), check the
stored index buffers against the formulas the model recomputes them with, rename the
rest, and compare the result with the key set and shapes of the model the config
describes. Anything unmapped, missing or misshapen is an error; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch

from ofa_core._errors import OFAError
from ofa_core.convert.keys import OFA_EMBEDDINGS, OFA_SHARED
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.task_config import CheckpointTask


class ConversionError(OFAError):
    """The source weights do not fit the model their config describes."""


@dataclass
class Converted:
    """An imported checkpoint: config, ofa_core state dict (tied names share one tensor) and provenance."""

    config: OFAConfig
    state_dict: dict[str, torch.Tensor]
    # ofa_core key -> the source key its tensor came from, for the verify report.
    sources: dict[str, str]
    source_dtypes: list[str]
    notes: list[str] = field(default_factory=list)
    # Everything the source said about itself that an exporter may want back (fairseq args/task).
    origin: dict = field(default_factory=dict)
    # The fine-tuning task a fairseq checkpoint records (written as ofa_task.json); ports record none.
    task: CheckpointTask | None = None


def expected_shapes(config: OFAConfig) -> dict[str, torch.Size]:
    """Key -> shape of `OFAForConditionalGeneration(config)`, built on the meta device (no memory, no init)."""
    from ofa_core.model.modeling import OFAForConditionalGeneration

    with torch.device("meta"):
        model = OFAForConditionalGeneration(config)
    return {key: value.shape for key, value in model.state_dict().items()}


def _names(keys: Iterable[str], limit: int = 12) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def assemble(
    source: Mapping[str, torch.Tensor],
    config: OFAConfig,
    *,
    origin: str,
    embedding_keys: tuple[str, ...],
    rename: Callable[[str], str],
    recomputed: Mapping[str, torch.Tensor],
    ignored: Iterable[str] = (),
    fill_batch_counters: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Map `source` onto ofa_core names; returns (state_dict, sources, notes) or raises `ConversionError`.

    `recomputed`: source buffers ofa_core derives itself, with the exact values they must hold.
    `ignored`: source keys dropped without a check (fairseq's `version` counters).
    `fill_batch_counters`: BatchNorm `num_batches_tracked` may be absent (FrozenBN checkpoints).
    """
    present = [key for key in embedding_keys if key in source]
    state, sources = _shared_embeddings(source, present, origin)
    _add_renamed(state, sources, source, set(present) | set(ignored), recomputed, rename, origin)
    notes = _check_complete(state, sources, expected_shapes(config), origin, fill_batch_counters)
    for key, tensor in state.items():
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            state[key] = tensor.float()
    for name in OFA_EMBEDDINGS[1:]:
        state[name] = state[OFA_SHARED]
    return state, sources, notes


def _shared_embeddings(
    source: Mapping[str, torch.Tensor], present: list[str], origin: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """OFA's one token embedding (encoder, decoder, output projection) from the source's identical copies."""
    state: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    if present:
        shared = source[present[0]]
        differing = [
            key for key in present[1:] if source[key].shape != shared.shape or not torch.equal(source[key], shared)
        ]
        if differing:
            raise ConversionError(
                f"{origin}: the token embedding copies {', '.join([present[0], *differing])} differ, but OFA shares "
                "one matrix between encoder, decoder and output projection; this checkpoint was not trained with "
                "shared embeddings and cannot be converted"
            )
        for name in OFA_EMBEDDINGS:
            state[name] = shared
            sources[name] = present[0]
    return state, sources


def _add_renamed(
    state: dict[str, torch.Tensor],
    sources: dict[str, str],
    source: Mapping[str, torch.Tensor],
    skipped: set[str],
    recomputed: Mapping[str, torch.Tensor],
    rename: Callable[[str], str],
    origin: str,
) -> None:
    """Every other source tensor under its ofa_core name; recomputed buffers are checked, not copied."""
    wrong_buffers = []
    for key, tensor in source.items():
        if key in skipped:
            continue
        if key in recomputed:
            expected = recomputed[key]
            if tensor.shape != expected.shape or not torch.equal(tensor.long(), expected):
                wrong_buffers.append(key)
            continue
        state[rename(key)] = tensor
        sources[rename(key)] = key
    if wrong_buffers:
        raise ConversionError(
            f"{origin}: the index buffers {_names(wrong_buffers)} differ from the bucket formulas the model uses "
            "(token/image bucket sizes or code_image_size in the config do not match the weights); the converted "
            "model would not reproduce this checkpoint"
        )


def _check_complete(
    state: dict[str, torch.Tensor],
    sources: dict[str, str],
    shapes: Mapping[str, torch.Size],
    origin: str,
    fill_batch_counters: bool,
) -> list[str]:
    """Drop what the model has no place for, then refuse a partial or misshapen model; returns notes."""
    notes: list[str] = []
    unmapped = []
    for key in list(state):
        if key not in shapes:
            unmapped.append(sources[key])
            del state[key]
    missing = sorted(set(shapes) - set(state))
    if fill_batch_counters:
        counters = [key for key in missing if key.endswith(".num_batches_tracked")]
        for key in counters:
            state[key] = torch.zeros((), dtype=torch.long)
            sources[key] = "(absent: FrozenBatchNorm)"
        if counters:
            notes.append(
                f"filled {len(counters)} BatchNorm num_batches_tracked counters with 0 (frozen BatchNorm "
                "checkpoint; they are unused at inference)"
            )
        missing = [key for key in missing if key not in counters]
    mismatched = [
        f"{sources[key]} {tuple(state[key].shape)} vs {tuple(shapes[key])}"
        for key in state
        if key in shapes and state[key].shape != shapes[key]
    ]
    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} unmapped keys: {_names(unmapped)}")
    if missing:
        problems.append(f"{len(missing)} missing keys: {_names(missing)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {_names(mismatched)}")
    if problems:
        raise ConversionError(f"{origin}: refusing to write a partial model: " + "; ".join(problems))
    return notes
