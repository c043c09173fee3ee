"""Groups of examples to model batches: one encoder row per group, right padding everywhere.

`encoder_index[i]` names the encoder row of decoder row i, so a batch whose groups hold ten
captions of one image runs the encoder on one row and shares it (see `grouping`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ofa_core._errors import OFAError
from ofa_core.data.encode import Example
from ofa_core.model.image_processing import ImageError
from ofa_core.model.labels import IGNORE_INDEX

logger = logging.getLogger(__name__)


class GroupDataset(torch.utils.data.Dataset):
    """Item g = (examples of group g, its image tensor or None, whether the image decoded); item `(g, start, stop)`
    the same for the members `groups[g][start:stop]` (a part of a group that a training batch cut).

    The image is decoded once per item, and with `cache_images` once per run: the tensor is kept for later
    epochs (the processing has no randomness, so it is the same tensor). A bad image drops the group
    (counted by `collate`) under the `skip` policy and raises under `error`. `encoded(example)` true means its
    encoder output is cached: the image is not decoded at all (None, as for an image-less example).
    """

    def __init__(
        self,
        examples: Sequence[Example],
        groups: Sequence[Sequence[int]],
        image_processor: Any,
        bad_images: str = "skip",
        cache_images: bool = False,
        encoded: Callable[[Example], bool] | None = None,
    ) -> None:
        self.examples = examples
        self.groups = groups
        self.image_processor = image_processor
        self.bad_images = bad_images
        self.cache: dict[int, torch.Tensor] | None = {} if cache_images else None
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int | tuple[int, int, int]) -> tuple[list[Example], torch.Tensor | None, bool]:
        group, start, stop = (index, 0, None) if isinstance(index, int) else index
        members = [self.examples[i] for i in self.groups[group][start:stop]]
        image = members[0].image
        if image is None or (self.encoded is not None and self.encoded(members[0])):
            return members, None, True
        if self.cache is not None and group in self.cache:
            return members, self.cache[group], True
        try:
            pixels = self.image_processor.to_tensor(image)
        except ImageError as err:
            if self.bad_images == "error":
                raise OFAError(
                    f"example {members[0].id!r}: {err} (set training.bad_images to 'skip' to drop such records)"
                ) from None
            logger.warning("skipping example %r: %s", members[0].id, err)
            return members, None, False
        if self.cache is not None:
            self.cache[group] = pixels
        return members, pixels, True


def pad_rows(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Token rows as one right-padded [N, longest] tensor."""
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for index, row in enumerate(rows):
        out[index, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


class Collator:
    """`collate(items)` -> dict of tensors plus `examples` and `num_dropped` (samples with bad images).

    `decoder_prompts` ([rows, P], right-padded; decoding forces them) and `loss_weights` ([rows]) are present only
    when some example has a prompt or a weight other than 1.
    """

    def __init__(self, pad_id: int, image_size: int) -> None:
        self.pad_id = pad_id
        self.image_size = image_size

    def __call__(self, items: Sequence[tuple[list[Example], torch.Tensor | None, bool]]) -> dict[str, Any]:
        kept = [item for item in items if item[2]]
        dropped = sum(len(item[0]) for item in items if not item[2])
        examples = [example for members, _, _ in kept for example in members]
        batch: dict[str, Any] = {"examples": examples, "num_dropped": dropped}
        if not kept:
            return batch
        sources = [members[0].source_ids for members, _, _ in kept]
        batch["input_ids"] = pad_rows(sources, self.pad_id)
        batch["attention_mask"] = batch["input_ids"].ne(self.pad_id).long()
        blank = torch.zeros(3, self.image_size, self.image_size)
        batch["patch_images"] = torch.stack([blank if image is None else image for _, image, _ in kept])
        batch["patch_masks"] = torch.tensor([image is not None for _, image, _ in kept])
        batch["decoder_input_ids"] = pad_rows([e.decoder_input_ids for e in examples], self.pad_id)
        batch["labels"] = pad_rows([e.labels for e in examples], IGNORE_INDEX)
        if any(e.decoder_prompt for e in examples):
            batch["decoder_prompts"] = pad_rows([e.decoder_prompt for e in examples], self.pad_id)
        if any(e.loss_weight != 1.0 for e in examples):
            batch["loss_weights"] = torch.tensor([e.loss_weight for e in examples])
        batch["encoder_index"] = torch.tensor([row for row, (members, _, _) in enumerate(kept) for _ in members])
        return batch
