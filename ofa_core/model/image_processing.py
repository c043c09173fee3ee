"""`OFAImageProcessor`: fairseq OFA's image transform as a transformers image processor.

fairseq does `convert('RGB')`, a square bicubic PIL resize to (S, S) that ignores the aspect
ratio, `ToTensor` and `Normalize`. The same operations run here in the same order, so
pixel values match the reference bit for bit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from os import PathLike, fspath
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from ofa_core._errors import OFAError

ImageLike = Image.Image | str | PathLike | bytes | bytearray | memoryview | np.ndarray

DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)


class ImageError(OFAError, ValueError):
    """An image input could not be read or decoded."""


def _describe(image: Any) -> str:
    if isinstance(image, (str, PathLike)):
        return f"image file {fspath(image)}"
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"image bytes ({len(image)} bytes)"
    return f"image input of type {type(image).__name__}"


def _from_array(array: np.ndarray) -> Image.Image:
    """HW or HWC (1, 3 or 4 channels) arrays; floats are taken as [0, 1] intensities."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageError(f"image array of shape {array.shape}: expected HxW or HxWxC with C in 1, 3, 4")
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.rint(array * 255.0), 0, 255)
    elif array.dtype != np.uint8 and (array.min() < 0 or array.max() > 255):
        raise ImageError(f"image array of dtype {array.dtype}: values must lie in 0..255")
    return Image.fromarray(np.ascontiguousarray(array.astype(np.uint8)))


def load_image(image: ImageLike) -> Image.Image:
    """An RGB PIL image from a PIL image, a path, encoded bytes or an array (decoded by content, not name)."""
    if isinstance(image, np.ndarray):
        pil = _from_array(image)
    elif isinstance(image, Image.Image):
        pil = image
    elif isinstance(image, (str, PathLike, bytes, bytearray, memoryview)):
        source = image if isinstance(image, (str, PathLike)) else io.BytesIO(bytes(image))
        try:
            pil = Image.open(source)
            pil.load()
        except FileNotFoundError:
            raise ImageError(f"{_describe(image)} does not exist; check the path") from None
        except UnidentifiedImageError:
            raise ImageError(f"{_describe(image)} is not in a known image format; re-encode or drop it") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageError(f"{_describe(image)} could not be decoded ({err}); re-encode or drop it") from None
    else:
        raise ImageError(f"{_describe(image)} is not supported; pass a PIL image, path, bytes or numpy array")
    # fairseq's transform starts with `convert('RGB')`; RGBA drops alpha, P and L expand to RGB.
    return pil if pil.mode == "RGB" else pil.convert("RGB")


class OFAImageProcessor(BaseImageProcessor):
    """Square bicubic resize to `patch_image_size` + normalisation, batched as `patch_images`/`patch_masks`.

    `None` entries in a batch stand for samples without an image: zero pixels and `patch_masks` False.
    """

    model_input_names = ["patch_images", "patch_masks"]

    def __init__(
        self,
        patch_image_size: int = 480,
        image_mean: Sequence[float] = DEFAULT_MEAN,
        image_std: Sequence[float] = DEFAULT_STD,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if len(image_mean) != 3 or len(image_std) != 3:
            raise ValueError("image_mean and image_std need one value per RGB channel (3 each)")
        self.patch_image_size = int(patch_image_size)
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]

    @classmethod
    def from_config(cls, config: Any) -> OFAImageProcessor:
        """Preprocessing of a model described by an `OFAConfig` (resolution and normalisation stats)."""
        return cls(
            patch_image_size=config.patch_image_size,
            image_mean=config.image_mean or DEFAULT_MEAN,
            image_std=config.image_std or DEFAULT_STD,
        )

    def to_tensor(self, image: ImageLike) -> torch.Tensor:
        """One image as a normalised float tensor [3, S, S]."""
        size = self.patch_image_size
        resized = load_image(image).resize((size, size), Image.Resampling.BICUBIC)
        pixels = torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1)
        mean = torch.tensor(self.image_mean).view(3, 1, 1)
        std = torch.tensor(self.image_std).view(3, 1, 1)
        return pixels.float().div(255).sub(mean).div(std)

    def preprocess(
        self, images: ImageLike | Sequence[ImageLike | None] | None, return_tensors: str | None = "pt"
    ) -> BatchFeature:
        """Batch of one or more images (a list is a batch, anything else a single image)."""
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r}: OFAImageProcessor returns PyTorch tensors only")
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise ValueError("images is an empty list; pass at least one image or None")
        size = self.patch_image_size
        blank = torch.zeros(3, size, size)
        patch_images = torch.stack([blank if image is None else self.to_tensor(image) for image in batch])
        patch_masks = torch.tensor([image is not None for image in batch], dtype=torch.bool)
        return BatchFeature({"patch_images": patch_images, "patch_masks": patch_masks})

    def __call__(
        self, images: ImageLike | Sequence[ImageLike | None] | None, return_tensors: str | None = "pt"
    ) -> BatchFeature:
        return self.preprocess(images, return_tensors=return_tensors)

    def to_dict(self) -> dict[str, Any]:
        """Only the settings that define the transform go to preprocessor_config.json."""
        return {
            "image_processor_type": type(self).__name__,
            "patch_image_size": self.patch_image_size,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
        }
