"""OFAImageProcessor: fairseq's convert('RGB') + square bicubic resize + normalise, on every input kind."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

from ofa_core.model.auto import register_auto_classes
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.image_processing import ImageError, OFAImageProcessor

SIZE = 16


def random_image(mode: str = "RGB", size: tuple[int, int] = (37, 23), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (size[1], size[0], channels) if channels else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode if mode in ("RGB", "RGBA", "L") else None)


def reference(image: Image.Image, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> torch.Tensor:
    """Hand-computed fairseq transform of one image: PIL bicubic resize, /255, (x - mean) / std."""
    resized = np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC), dtype=np.float32)
    normalised = (resized / 255.0 - np.array(mean, np.float32)) / np.array(std, np.float32)
    return torch.from_numpy(normalised.transpose(2, 0, 1).copy())


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def processor() -> OFAImageProcessor:
    return OFAImageProcessor(patch_image_size=SIZE)


def test_rgb_matches_hand_computed_transform(processor: OFAImageProcessor) -> None:
    image = random_image()
    out = processor(image)
    assert out["patch_images"].shape == (1, 3, SIZE, SIZE)
    assert out["patch_images"].dtype == torch.float32
    torch.testing.assert_close(out["patch_images"][0], reference(image), atol=1e-6, rtol=0)
    assert out["patch_masks"].tolist() == [True]


def test_imagenet_statistics(processor: OFAImageProcessor) -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    image = random_image(seed=1)
    out = OFAImageProcessor(patch_image_size=SIZE, image_mean=mean, image_std=std)(image)
    torch.testing.assert_close(out["patch_images"][0], reference(image, mean, std), atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P"])
def test_other_modes_convert_like_pil(processor: OFAImageProcessor, mode: str) -> None:
    image = random_image("RGBA" if mode == "RGBA" else "L", seed=2)
    if mode == "P":
        image = random_image(seed=2).convert("P")
    assert image.mode == mode
    torch.testing.assert_close(processor(image)["patch_images"][0], reference(image), atol=1e-6, rtol=0)


def test_webp_saved_as_jpg_path_bytes_and_array(processor: OFAImageProcessor, tmp_path: Path) -> None:
    image = random_image(seed=3)
    webp = encode(image, "WEBP")
    path = tmp_path / "photo.jpg"
    path.write_bytes(webp)
    decoded = Image.open(io.BytesIO(webp))
    expected = reference(decoded)
    for source in (path, str(path), webp, np.asarray(decoded.convert("RGB"))):
        torch.testing.assert_close(processor(source)["patch_images"][0], expected, atol=1e-6, rtol=0)


def test_grayscale_and_float_arrays(processor: OFAImageProcessor) -> None:
    gray = np.asarray(random_image("L", seed=4))
    expected = reference(Image.fromarray(gray))
    torch.testing.assert_close(processor(gray)["patch_images"][0], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(processor(gray / 255.0)["patch_images"][0], expected, atol=1e-6, rtol=0)
    with pytest.raises(ImageError, match="shape"):
        processor(np.zeros((4, 4, 2), np.uint8))


def test_batch_with_missing_image(processor: OFAImageProcessor) -> None:
    out = processor([random_image(), None, random_image("L")])
    assert out["patch_images"].shape == (3, 3, SIZE, SIZE)
    assert out["patch_masks"].tolist() == [True, False, True]
    assert out["patch_masks"].dtype == torch.bool
    assert torch.count_nonzero(out["patch_images"][1]) == 0


def test_corrupt_inputs_raise_one_line_value_errors(processor: OFAImageProcessor, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"image bytes \(9 bytes\)") as err:
        processor(b"not a png")
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
    truncated = tmp_path / "broken.jpg"
    truncated.write_bytes(encode(random_image(size=(64, 64)), "JPEG")[:300])
    with pytest.raises(ImageError, match="broken.jpg"):
        processor(truncated)
    with pytest.raises(ImageError, match="missing.png"):
        processor(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="int"):
        processor(3)


def test_from_config_and_save_load(tmp_path: Path) -> None:
    config = OFAConfig.from_preset("tiny-test", image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    processor = OFAImageProcessor.from_config(config)
    assert processor.patch_image_size == config.patch_image_size == 64
    register_auto_classes()
    config.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    for loaded in (AutoImageProcessor.from_pretrained(tmp_path), OFAImageProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is OFAImageProcessor
        assert loaded.to_dict() == processor.to_dict()
        image = random_image(seed=5)
        torch.testing.assert_close(loaded(image)["patch_images"], processor(image)["patch_images"])
