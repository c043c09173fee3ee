"""`OFAProcessor`: the tokenizer and the image processor behind one call, saved as one directory."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import BatchFeature, ProcessorMixin

from ofa_core.model.image_processing import ImageLike, OFAImageProcessor
from ofa_core.model.tokenization import OFATokenizer


class OFAProcessor(ProcessorMixin):
    """Turns prompts and images into the OFA encoder inputs.

    `processor(text=..., images=...)` gives `input_ids`/`attention_mask` (right-padded with `<pad>`)
    and `patch_images`/`patch_masks`; without images every sample gets a blank image whose
    `patch_masks` entry is False, which is how fairseq feeds text-only samples.
    """

    def __init__(self, image_processor: OFAImageProcessor, tokenizer: OFATokenizer, **kwargs) -> None:
        super().__init__(image_processor, tokenizer, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> OFAProcessor:
        """Load a saved processor; its parts are loaded by class, so no Auto registration is needed first."""
        return cls(
            OFAImageProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs),
            OFATokenizer.from_pretrained(pretrained_model_name_or_path, **kwargs),
        )

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        images: ImageLike | Sequence[ImageLike | None] | None = None,
        padding: bool | str = True,
        truncation: bool | None = None,
        max_length: int | None = None,
        return_tensors: str = "pt",
        **tokenizer_kwargs,
    ) -> BatchFeature:
        """Encode a prompt (or a batch) and its image(s); a list of texts pairs with a list of images."""
        if text is None and images is None:
            raise ValueError("OFAProcessor needs text, images or both")
        if return_tensors != "pt":
            raise ValueError(f"return_tensors={return_tensors!r}: OFAProcessor returns PyTorch tensors only")
        data: dict[str, torch.Tensor] = {}
        if text is not None:
            encoded = self.tokenizer(
                text,
                padding=padding,
                truncation=truncation,
                max_length=max_length,
                return_tensors="pt",
                **tokenizer_kwargs,
            )
            data.update(encoded)
        if images is not None:
            data.update(self.image_processor(images))
        else:
            data.update(self.image_processor([None] * data["input_ids"].shape[0]))
        if text is not None and data["patch_images"].shape[0] != data["input_ids"].shape[0]:
            raise ValueError(
                f"got {data['input_ids'].shape[0]} texts but {data['patch_images'].shape[0]} images;"
                " pass one image (or None) per text"
            )
        return BatchFeature(data)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "patch_images", "patch_masks"]
