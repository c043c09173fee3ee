"""The tiny MUGE data and base model the peft tests train on, made once per session."""

from __future__ import annotations

import pytest

from ofa_core.testing import tiny_checkpoint
from tests.trainer.test_recipe import write_muge


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("peft")
    write_muge(folder / "MUGE", "train", 4)
    write_muge(folder / "MUGE", "valid", 2)
    tiny_checkpoint(folder / "model")
    return folder
