"""Shared checkpoints for the conversion tests (built once per session: they take ~1 s each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_core.cli import main

from .fixtures import CN_BASE_NARROW, TINY, save_fairseq_checkpoint, write_bert_vocab


def run_cli(*argv: object) -> int:
    return main([str(arg) for arg in argv])


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fairseq") / "tiny.pt"
    save_fairseq_checkpoint(path, TINY, seed=1)
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny_ckpt) -> Path:
    out = tmp_path_factory.mktemp("converted") / "tiny"
    assert run_cli("convert", "fairseq", tiny_ckpt, "--out", out, "--no-tokenizer") == 0
    return out


@pytest.fixture(scope="session")
def bert_vocab(tmp_path_factory) -> Path:
    return write_bert_vocab(tmp_path_factory.mktemp("vocab") / "vocab.txt", 21128)


@pytest.fixture(scope="session")
def cn_base_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fairseq") / "cn_base_narrow.pt"
    save_fairseq_checkpoint(path, CN_BASE_NARROW, seed=2)
    return path
