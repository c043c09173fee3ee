"""Groups of samples that share an encoder input, and the deterministic batches built from them.

MUGE has 10 captions per image. With a frozen encoder every caption of an image has the same
encoder output, so a group (same image, same source text) is encoded once and its output is shared
by the group's decoder rows. Training batches (`example_batches`) hold exactly the batch size in examples,
cutting a group where a batch ends; evaluation batches (`epoch_batches`) are packed from whole groups. Either
packing is cut into per-process parts, so N processes see exactly the samples one process would with an N× batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ofa_core.data.encode import Example

Part = tuple[int, int, int]
"""`(group, start, stop)`: the members `groups[group][start:stop]`, one encoder input within a batch."""


def group_examples(examples: Sequence[Example], by_image: bool) -> list[list[int]]:
    """Example indices grouped by (image, source ids) in first-seen order; singletons when not `by_image`."""
    if not by_image:
        return [[index] for index in range(len(examples))]
    groups: dict[tuple, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault((example.image_key, example.source_ids), []).append(index)
    return list(groups.values())


def _split(sizes: list[int], parts: int) -> list[tuple[int, int]]:
    """Contiguous, non-empty ranges of `sizes` with sample counts as equal as whole groups allow."""
    total, bounds, start, running = sum(sizes), [], 0, 0
    for part in range(1, parts):
        stop, goal = start, total * part / parts
        while stop < len(sizes) - (parts - part) and (stop == start or running + sizes[stop] <= goal):
            running += sizes[stop]
            stop += 1
        bounds.append((start, stop))
        start = stop
    bounds.append((start, len(sizes)))
    return bounds


def epoch_batches(
    groups: Sequence[Sequence[int]],
    batch_size: int,
    world_size: int,
    rank: int,
    seed: int,
    epoch: int,
    shuffle: bool,
    drop_last: bool,
) -> list[list[int]]:
    """This process's batches of one epoch, as lists of group indices.

    Groups are shuffled with `seed + epoch` (identical on every process), packed into global
    batches of about `batch_size * world_size` samples, and each global batch is cut into
    `world_size` contiguous parts. A final global batch with fewer groups than processes is
    dropped when `drop_last` (training), otherwise padded with empty parts (evaluation).
    """
    order = list(range(len(groups)))
    if shuffle:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    target = batch_size * world_size
    packed: list[list[int]] = [[]]
    count = 0
    for group in order:
        if count and count + len(groups[group]) > target:
            packed.append([])
            count = 0
        packed[-1].append(group)
        count += len(groups[group])
    batches = []
    for chunk in packed:
        if not chunk:
            continue
        if len(chunk) < world_size:
            if drop_last:
                continue
            batches.append(chunk[rank : rank + 1])
            continue
        start, stop = _split([len(groups[g]) for g in chunk], world_size)[rank]
        batches.append(chunk[start:stop])
    return batches


def example_batches(
    groups: Sequence[Sequence[int]], batch_size: int, world_size: int, rank: int, seed: int, epoch: int
) -> list[list[Part]]:
    """This process's training batches of one epoch: `batch_size` examples each, as parts of groups.

    Groups are shuffled with `seed + epoch` (identical on every process) and laid end to end; every
    `batch_size * world_size` examples make a global batch, cut into `world_size` runs of `batch_size`.
    A group that a cut crosses is split: each side is one part, encoded once in its own batch. The last,
    short global batch is cut as evenly as possible, and dropped when it has fewer examples than processes.
    With single-example groups this is the packing `epoch_batches` makes.
    """
    order = list(range(len(groups)))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    flat = [(group, member) for group in order for member in range(len(groups[group]))]
    target = batch_size * world_size
    batches = []
    for begin in range(0, len(flat), target):
        chunk = flat[begin : begin + target]
        if len(chunk) < world_size:
            continue
        batches.append(_parts(chunk[len(chunk) * rank // world_size : len(chunk) * (rank + 1) // world_size]))
    return batches


def _parts(run: Sequence[tuple[int, int]]) -> list[Part]:
    """Consecutive `(group, member)` pairs as `(group, start, stop)` parts."""
    parts: list[Part] = []
    for group, member in run:
        if parts and parts[-1][0] == group and parts[-1][2] == member:
            parts[-1] = (group, parts[-1][1], member + 1)
        else:
            parts.append((group, member, member + 1))
    return parts
