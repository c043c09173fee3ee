"""Frozen-encoder outputs computed once per run: later epochs of a LiT run read them instead of running the encoder.

Under `freeze_encoder`, with nothing in the encoder training (the shared word embedding frozen too), the encoder
runs in eval mode and maps an (image, source text) to the same output every epoch. Each distinct pair is a slot;
its output rows (image patches, then the source tokens, no padding) are stored the first time a batch computes
them. A batch whose slots are all stored skips the encoder (and the DataLoader skips decoding their images); a
batch with some missing runs the encoder on those rows only. The rows that were just computed serve their own
batch as computed, so the first epoch is the uncached run exactly; later epochs read what was stored, rounded
to the cache's dtype.

Storage: a host tensor when the whole cache fits `encoder_cache_memory_mb`, else a memory-mapped file under
`<output_dir>/encoder-cache/<key>/rank-<rank>/`, where the key hashes the encoder's weights, the model config,
the image preprocessing (resolution, normalisation), the autocast precision, the cache dtype and the slots'
inputs. Each process caches what it reads. Which slots the file holds is written at commits (checkpoints, the
end of training), after the rows are synced: a run killed between commits recomputes what came after the last
one, and a file of the wrong size (truncated) is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
import torch

from ofa_core.data.encode import Example
from ofa_core.model.modeling.outputs import OFAEncoderOutput

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
FORMAT = 1
EMPTY, IMAGE, NO_IMAGE = 0, 1, 2
"""A slot's state in the `filled` flags: not stored, stored with its image, stored for an image-less input."""

EncoderFn = Callable[[dict[str, torch.Tensor]], OFAEncoderOutput]


def slot_key(example: Example) -> tuple:
    return example.image_key, example.source_ids


def fingerprint(
    encoder: torch.nn.Module, model_config: Any, preprocessing: dict, precision: str, dtype: str, keys: Sequence[tuple]
) -> str:
    """What the stored outputs depend on, hashed: weights, config, preprocessing, precision, dtype and inputs."""
    digest = hashlib.blake2b(digest_size=16)
    config = {k: v for k, v in model_config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
    digest.update(
        orjson.dumps(
            {
                "format": FORMAT,
                "config": config,
                "preprocessing": preprocessing,
                "precision": precision,
                "dtype": dtype,
            },
            default=str,
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        )
    )
    for name, tensor in encoder.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    for key in keys:
        digest.update(repr(key).encode())
    return digest.hexdigest()


@attrs.frozen
class Encoded:
    """`encoded(example)`: whether its encoder output is stored, so its image need not be decoded.

    Picklable and cheap: DataLoader workers get it; `filled` lives in shared memory, so they see new slots."""

    slots: dict[tuple, int]
    filled: torch.Tensor

    def __call__(self, example: Example) -> bool:
        slot = self.slots.get(slot_key(example))
        return slot is not None and bool(self.filled[slot])


class EncoderCache:
    """Stored encoder rows of one task's slots, in `storage` (host memory or a mapped file); see the module doc."""

    def __init__(
        self,
        keys: Sequence[tuple],
        image_len: int,
        out_dtype: torch.dtype,
        storage: torch.Tensor,
        filled: torch.Tensor,
        files: _Files | None,
    ) -> None:
        self.slots = {key: slot for slot, key in enumerate(keys)}
        self.image_len = image_len
        self.out_dtype = out_dtype
        self.storage = storage
        self.filled = filled
        self.files = files
        lengths = torch.tensor([image_len + len(source_ids) for _, source_ids in keys])
        self.lengths = lengths.tolist()
        self.offsets = (torch.cumsum(lengths, 0) - lengths).tolist()
        self.positions: dict[int, torch.Tensor] = {}  # source width -> position embeddings [image_len + width, D]
        self.hits = self.misses = 0

    @property
    def encoded(self) -> Encoded:
        return Encoded(self.slots, self.filled)

    def stored(self) -> int:
        return int(self.filled.ne(EMPTY).sum())

    def encode(self, batch: dict, encoder: EncoderFn) -> OFAEncoderOutput:
        """The encoder output of `batch`'s encoder rows: stored rows read, the others computed and stored."""
        index = batch["encoder_index"].tolist()
        slot_of_row = [0] * len(batch["input_ids"])
        for example, row in zip(batch["examples"], index):
            slot_of_row[row] = self.slots[slot_key(example)]
        states = self.filled[slot_of_row].tolist()
        missing = [row for row, state in enumerate(states) if state == EMPTY]
        width = batch["input_ids"].shape[1]
        if len(missing) == len(states):
            out = encoder({k: batch[k] for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")})
            self._store(out, slot_of_row, range(len(states)), batch["patch_masks"])
            self.positions.setdefault(width, out.position_embeddings[0])
            self.misses += len(states)
            return out
        computed = None
        if missing:
            rows = torch.tensor(missing, device=batch["input_ids"].device)
            computed = encoder(
                {
                    k: batch[k].index_select(0, rows)
                    for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")
                }
            )
            self._store(
                computed,
                [slot_of_row[row] for row in missing],
                range(len(missing)),
                batch["patch_masks"].index_select(0, rows),
            )
            self.positions.setdefault(width, computed.position_embeddings[0])
        present = [row for row, state in enumerate(states) if state != EMPTY]
        self.misses += len(missing)
        self.hits += len(present)
        return self._assemble(batch, slot_of_row, present, states, missing, computed, encoder)

    def _store(
        self, out: OFAEncoderOutput, slots: Sequence[int], rows: Sequence[int], patch_masks: torch.Tensor
    ) -> None:
        hidden = out.last_hidden_state.detach().to(self.storage.dtype).cpu()
        for slot, row in zip(slots, rows):
            start, length = self.offsets[slot], self.lengths[slot]
            self.storage[start : start + length].copy_(hidden[row, :length])
        with_image = patch_masks.tolist()
        self.filled[list(slots)] = torch.tensor(
            [IMAGE if with_image[row] else NO_IMAGE for row in rows], dtype=torch.uint8
        )

    def _assemble(
        self,
        batch: dict,
        slot_of_row: list[int],
        present: list[int],
        states: list[int],
        missing: list[int],
        computed: OFAEncoderOutput | None,
        encoder: EncoderFn,
    ) -> OFAEncoderOutput:
        """Stored rows zero-padded to the batch's width, computed rows as they came; padding as the encoder marks it."""
        input_ids = batch["input_ids"]
        device, width = input_ids.device, input_ids.shape[1]
        length = self.image_len + width
        hidden = torch.zeros(len(slot_of_row), length, self.storage.shape[1], dtype=self.out_dtype, device=device)
        padding = torch.ones(len(slot_of_row), length, dtype=torch.bool, device=device)
        sources, targets, positions = [], [], []
        for row in present:
            start, count = self.offsets[slot_of_row[row]], self.lengths[slot_of_row[row]]
            sources.append(torch.arange(start, start + count))
            targets.append(torch.full((count,), row))
            positions.append(torch.arange(count))
            padding[row, :count] = False
            if states[row] == NO_IMAGE:
                padding[row, : self.image_len] = True
        rows, columns = torch.cat(targets).to(device), torch.cat(positions).to(device)
        hidden[rows, columns] = self.storage[torch.cat(sources)].to(
            device=device, dtype=self.out_dtype, non_blocking=True
        )
        if computed is not None:
            at = torch.tensor(missing, device=device)
            hidden.index_copy_(0, at, computed.last_hidden_state.to(self.out_dtype))
            padding.index_copy_(0, at, computed.padding_mask)
        if width not in self.positions:
            self.positions[width] = self._probe(batch, encoder)
        table = self.positions[width]
        return OFAEncoderOutput(
            last_hidden_state=hidden,
            padding_mask=padding,
            position_embeddings=table.unsqueeze(0).expand(len(slot_of_row), -1, -1),
        )

    def _probe(self, batch: dict, encoder: EncoderFn) -> torch.Tensor:
        """The position embeddings of a source width no computed batch has had: one encoder row (they depend
        only on the width and the image size)."""
        first = {k: batch[k][:1] for k in ("input_ids", "attention_mask", "patch_images", "patch_masks")}
        return encoder(first).position_embeddings[0]

    def commit(self) -> None:
        """Make what is stored so far survive the process: rows synced to disk, then the flags naming them."""
        if self.files is not None:
            self.files.commit(self.filled)


@attrs.define
class _Files:
    """The mapped files of a disk cache: `rows.bin`, `filled.bin` and `meta.json` in `folder`."""

    folder: Path
    rows: mmap.mmap

    def commit(self, filled: torch.Tensor) -> None:
        self.rows.flush()
        temporary = self.folder / "filled.bin.tmp"
        with open(temporary, "wb") as handle:
            handle.write(filled.numpy().tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.folder / "filled.bin")


def _mapped(
    folder: Path, size: int, dtype: torch.dtype, width: int, filled: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, _Files]:
    with open(folder / "rows.bin", "r+b") as handle:
        rows = mmap.mmap(handle.fileno(), size)
    storage = torch.frombuffer(rows, dtype=dtype).view(-1, width)
    return storage, filled.share_memory_(), _Files(folder, rows)


def _open_files(
    folder: Path, meta: dict, rows: int, width: int, dtype: torch.dtype, slots: int
) -> tuple[torch.Tensor, torch.Tensor, _Files, str]:
    """Map `folder`'s rows file, reusing the slots it committed when its description and sizes match; else
    start it afresh. Returns storage, flags, files and what was wrong with a previous file ('' if nothing)."""
    size = rows * width * dtype.itemsize
    note = ""
    if (folder / "meta.json").exists():
        try:
            previous = orjson.loads((folder / "meta.json").read_bytes())
        except orjson.JSONDecodeError:
            previous = None
        sizes = tuple(
            (folder / name).stat().st_size if (folder / name).exists() else -1 for name in ("rows.bin", "filled.bin")
        )
        if previous != meta:
            note = "its meta.json does not describe this cache"
        elif sizes != (size, slots):
            note = (
                f"rows.bin holds {max(sizes[0], 0):,} of {size:,} bytes, filled.bin {max(sizes[1], 0):,} of {slots:,}"
            )
        else:
            filled = torch.frombuffer(bytearray((folder / "filled.bin").read_bytes()), dtype=torch.uint8)
            if not bool(filled.gt(NO_IMAGE).any()):
                return (*_mapped(folder, size, dtype, width, filled), "")
            note = "filled.bin holds unknown states"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with open(folder / "rows.bin", "wb") as handle:
        handle.truncate(size)  # sparse: blocks are allocated as rows are written
    (folder / "filled.bin").write_bytes(bytes(slots))
    (folder / "meta.json").write_bytes(orjson.dumps(meta))
    return (*_mapped(folder, size, dtype, width, torch.zeros(slots, dtype=torch.uint8)), note)


def _probe(encoder: EncoderFn, first: Example, side: int) -> torch.Tensor:
    """The encoder's output for one row (a blank image): its length and dtype size the cache."""
    return encoder(
        {
            "input_ids": torch.tensor([first.source_ids]),
            "attention_mask": torch.ones(1, len(first.source_ids), dtype=torch.long),
            "patch_images": torch.zeros(1, 3, side, side),
            "patch_masks": torch.tensor([True]),
        }
    ).last_hidden_state


def _remove_stale(folder: Path, key: str, rank: int) -> None:
    """This rank's caches of another model, preprocessing or data: their rows are of no use."""
    for stale in folder.glob(f"*/rank-{rank}"):
        if stale.parent.name != key:
            shutil.rmtree(stale, ignore_errors=True)
            with contextlib.suppress(OSError):  # the other processes' folders may still be there
                stale.parent.rmdir()


def open_cache(
    examples: Sequence[Example],
    encoder: EncoderFn,
    encoder_module: torch.nn.Module,
    model_config: Any,
    image_processor: Any,
    precision: str,
    dtype_name: str,
    memory_mb: int,
    folder: Path,
    rank: int,
    say: Callable[[str], None],
) -> EncoderCache:
    """The cache of `examples`' distinct encoder inputs: in memory when it fits `memory_mb` (in the encoder output's
    own dtype unless `dtype_name` names one), else mapped from a file under `folder` (float16 unless it names one).

    One encoder row is run first to learn the output's length and dtype."""
    keys = list(dict.fromkeys(slot_key(example) for example in examples))
    hidden = _probe(encoder, examples[0], image_processor.patch_image_size)
    image_len, width = hidden.shape[1] - len(examples[0].source_ids), hidden.shape[2]
    rows = sum(image_len + len(source_ids) for _, source_ids in keys)
    in_memory = rows * width * DTYPES.get(dtype_name, hidden.dtype).itemsize <= memory_mb * 2**20
    dtype = DTYPES.get(dtype_name, hidden.dtype if in_memory else torch.float16)
    size = rows * width * dtype.itemsize
    described = (
        f"{len(keys):,} encoder inputs of {image_len} image + source positions x {width}, {dtype_name_of(dtype)}"
    )
    if in_memory:
        say(f"encoder cache: {described}, {size / 2**20:,.1f} MB in memory")
        return EncoderCache(
            keys,
            image_len,
            hidden.dtype,
            torch.empty(rows, width, dtype=dtype),
            torch.zeros(len(keys), dtype=torch.uint8).share_memory_(),
            None,
        )
    key = fingerprint(encoder_module, model_config, image_processor.to_dict(), precision, dtype_name_of(dtype), keys)
    _remove_stale(folder, key, rank)
    folder = folder / key / f"rank-{rank}"
    meta = {
        "format": FORMAT,
        "key": key,
        "dtype": dtype_name_of(dtype),
        "rows": rows,
        "width": width,
        "slots": len(keys),
        "image_len": image_len,
    }
    storage, filled, files, note = _open_files(folder, meta, rows, width, dtype, len(keys))
    if note:
        say(f"encoder cache: {folder}: {note}; rebuilt")
    cache = EncoderCache(keys, image_len, hidden.dtype, storage, filled, files)
    say(f"encoder cache: {described}, {size / 2**30:,.2f} GB on disk at {folder} ({cache.stored():,} stored)")
    return cache


def dtype_name_of(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
