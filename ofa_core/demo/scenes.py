"""What a demo "product photo" shows: one object, its colour, its surface pattern and the background.

Every attribute has a Chinese name (used by captions, questions and labels) and what the drawing
needs (an RGB colour, an outline). Scenes are drawn from a seeded `random.Random`, so the same seed
always gives the same dataset.
"""

from __future__ import annotations

import random

import attrs

# object -> the shape word captions and questions use for its outline
OBJECTS: dict[str, str] = {
    "杯子": "圆柱形",
    "包": "梯形",
    "鞋": "长条形",
    "帽子": "半圆形",
    "瓶子": "细长形",
    "盒子": "方形",
}
COLOURS: dict[str, tuple[int, int, int]] = {
    "红色": (210, 35, 40),
    "橙色": (240, 135, 25),
    "黄色": (235, 200, 30),
    "绿色": (40, 150, 60),
    "蓝色": (35, 80, 205),
    "紫色": (130, 50, 175),
    "黑色": (30, 30, 30),
    "粉色": (240, 140, 185),
}
PATTERNS = ("纯色", "条纹", "圆点", "格子")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "白色": (246, 246, 246),
    "灰色": (140, 140, 140),
    "米色": (232, 218, 186),
    "浅蓝色": (185, 212, 240),
}


@attrs.frozen
class Scene:
    """One photo's content; the drawing's own jitter (position, size, noise) comes from `seed`."""

    object: str
    colour: str
    pattern: str
    background: str
    seed: int

    @property
    def shape(self) -> str:
        return OBJECTS[self.object]


def sample_scene(rng: random.Random) -> Scene:
    return Scene(
        object=rng.choice(list(OBJECTS)),
        colour=rng.choice(list(COLOURS)),
        pattern=rng.choice(PATTERNS),
        background=rng.choice(list(BACKGROUNDS)),
        seed=rng.getrandbits(32),
    )
