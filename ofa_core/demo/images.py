"""Drawing a scene as a small JPEG "product photo": an outlined object with a surface pattern,
light shading, a soft shadow and sensor noise on a plain background, placed and sized with jitter.

Outlines are polygons and ellipses in a unit box around the object's centre (y grows downwards),
scaled to the object's size; the pattern is drawn over the whole canvas and cut out by the outline.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ofa_core.demo.scenes import BACKGROUNDS, COLOURS, Scene

SIZE = 128
"""Width and height of every photo in pixels."""


def _outline(draw: ImageDraw.ImageDraw, name: str, to_px) -> None:
    """Fill the object's outline with 255 on an 'L' mask; `to_px(x, y)` maps unit coordinates to pixels."""

    def polygon(points):
        draw.polygon([to_px(x, y) for x, y in points], fill=255)

    def box(x0, y0, x1, y1):
        return [*to_px(x0, y0), *to_px(x1, y1)]

    if name == "杯子":
        polygon([(-0.55, -0.7), (0.45, -0.7), (0.38, 0.8), (-0.48, 0.8)])
        draw.ellipse(box(0.25, -0.4, 0.9, 0.4), outline=255, width=max(2, int(to_px(0.14, 0)[0] - to_px(0, 0)[0])))
    elif name == "包":
        polygon([(-0.7, -0.2), (0.7, -0.2), (0.88, 0.8), (-0.88, 0.8)])
        draw.arc(
            box(-0.45, -0.85, 0.45, 0.25), 180, 360, fill=255, width=max(2, int(to_px(0.12, 0)[0] - to_px(0, 0)[0]))
        )
    elif name == "鞋":
        polygon([(-0.9, 0.5), (-0.9, -0.4), (-0.45, -0.4), (-0.3, 0.0), (0.55, 0.1), (0.9, 0.32), (0.9, 0.5)])
    elif name == "帽子":
        draw.pieslice(box(-0.58, -0.5, 0.58, 0.7), 180, 360, fill=255)
        draw.rectangle(box(-0.95, 0.08, 0.95, 0.28), fill=255)
    elif name == "瓶子":
        draw.rounded_rectangle(
            box(-0.32, -0.25, 0.32, 0.9), radius=max(2, int(to_px(0.12, 0)[0] - to_px(0, 0)[0])), fill=255
        )
        draw.rectangle(box(-0.12, -0.68, 0.12, -0.2), fill=255)
        draw.rectangle(box(-0.17, -0.9, 0.17, -0.66), fill=255)
    elif name == "盒子":
        draw.rectangle(box(-0.66, -0.5, 0.66, 0.78), fill=255)
        draw.rectangle(box(-0.74, -0.76, 0.74, -0.48), fill=255)
    else:
        raise ValueError(f"no outline for object {name!r}")


def _pattern(name: str, base: tuple[int, int, int], rng: random.Random) -> Image.Image:
    """The object's surface over the whole canvas: plain, stripes, dots or checks in a contrasting colour."""
    luminance = 0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2]
    contrast = (55, 55, 55) if luminance > 150 else (245, 245, 245)
    surface = Image.new("RGB", (SIZE, SIZE), base)
    draw = ImageDraw.Draw(surface)
    offset = rng.randrange(12)
    if name == "条纹":
        for y in range(-offset, SIZE, 12):
            draw.rectangle([0, y, SIZE, y + 4], fill=contrast)
    elif name == "圆点":
        for row, y in enumerate(range(-offset, SIZE + 14, 14)):
            for x in range(-offset + (7 if row % 2 else 0), SIZE + 14, 14):
                draw.ellipse([x - 3.5, y - 3.5, x + 3.5, y + 3.5], fill=contrast)
    elif name == "格子":
        for row, y in enumerate(range(-offset, SIZE, 10)):
            for column, x in enumerate(range(-offset, SIZE, 10)):
                if (row + column) % 2:
                    draw.rectangle([x, y, x + 9, y + 9], fill=contrast)
    elif name != "纯色":
        raise ValueError(f"no drawing for pattern {name!r}")
    return surface


def draw_scene(scene: Scene) -> Image.Image:
    """The scene as an RGB image of SIZE x SIZE pixels; the same scene always gives the same pixels."""
    rng = random.Random(scene.seed)
    half = SIZE * rng.uniform(0.27, 0.36)
    centre_x = SIZE / 2 + rng.uniform(-0.12, 0.12) * SIZE
    centre_y = SIZE / 2 + rng.uniform(-0.08, 0.08) * SIZE

    def to_px(x: float, y: float) -> tuple[float, float]:
        return centre_x + x * half, centre_y + y * half

    background = Image.new("RGB", (SIZE, SIZE), BACKGROUNDS[scene.background])
    shadow = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(shadow).ellipse([*to_px(-0.95, 0.7), *to_px(1.05, 1.05)], fill=90)
    background = Image.composite(
        Image.new("RGB", (SIZE, SIZE), (40, 40, 40)), background, shadow.filter(ImageFilter.GaussianBlur(4))
    )
    mask = Image.new("L", (SIZE, SIZE), 0)
    _outline(ImageDraw.Draw(mask), scene.object, to_px)
    surface = np.asarray(_pattern(scene.pattern, COLOURS[scene.colour], rng), dtype=np.float32)
    shading = np.linspace(1.12, 0.82, SIZE, dtype=np.float32)[None, :, None]  # lit from the left
    surface = Image.fromarray(np.clip(surface * shading, 0, 255).astype(np.uint8))
    photo = np.asarray(
        Image.composite(surface, background, mask.filter(ImageFilter.GaussianBlur(0.6))), dtype=np.float32
    )
    noise = np.random.default_rng(scene.seed).normal(0.0, 5.0, photo.shape).astype(np.float32)
    return Image.fromarray(np.clip(photo + noise, 0, 255).astype(np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
