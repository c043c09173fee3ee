"""A task's or recipe's `generation` value as the `GenerationConfig` evaluation and predict decode with."""

from __future__ import annotations

from transformers import GenerationConfig

from ofa_core.model.generation_config import official_generation_config


def generation_config(value: str | dict, **ids: int) -> GenerationConfig:
    """An official search by name, or GenerationConfig keyword arguments refining the `default` search."""
    if isinstance(value, str):
        return official_generation_config(value, **ids)
    config = official_generation_config("default", **ids)
    config.update(**value)
    return config
