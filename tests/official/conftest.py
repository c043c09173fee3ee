"""Converted checkpoints shared by the recipes whose cases build the same model (e.g. caption_coco and its SCST
stage), built once per session."""

from __future__ import annotations

from pathlib import Path

import attrs
import orjson
import pytest

from ofa_core.cli import main

from .cases import Case
from .checkpoints import build, digest


@attrs.frozen
class Built:
    checkpoint: Path  # the official-layout .pt
    digest: str  # checkpoints.digest of it
    converted: Path  # what `convert fairseq` made of it, as the recipe's setup says


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """`built(case)`: the case's checkpoint and its conversion, made on first use."""
    cache: dict[tuple, Built] = {}

    def get(case: Case) -> Built:
        key = (
            case.cfg,
            case.language,
            orjson.dumps(case.config, option=orjson.OPT_SORT_KEYS),
            case.weights,
            case.convert,
        )
        if key not in cache:
            directory = tmp_path_factory.mktemp(case.recipe)
            checkpoint = build(case, directory)
            converted = directory / "converted"
            code = main(
                [
                    "convert",
                    "fairseq",
                    str(checkpoint),
                    "--out",
                    str(converted),
                    *case.tokenizer_arguments(),
                    *case.convert,
                ]
            )
            assert code == 0, f"convert fairseq {checkpoint} exited {code}"
            cache[key] = Built(checkpoint, digest(checkpoint), converted)
        return cache[key]

    return get
