"""The demo tests write into a temporary cache folder (`OFA_CACHE_DIR`), never into the user's ~/.cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_core.demo.writer import DemoSizes, generate

RECIPES = Path(__file__).parents[2] / "recipes"
SMALL = DemoSizes(train_images=64, valid_images=12, train_captions=3, train_questions=5)
"""Enough photos to learn something in seconds."""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("OFA_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def small_demo(cache):
    """A small demo where the demo recipes look for it."""
    generate(cache / "demo", SMALL)
    return cache / "demo"
