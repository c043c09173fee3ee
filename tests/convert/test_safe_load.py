"""The restricted checkpoint loader: official contents load, anything else is refused unexecuted."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch

from ofa_core.convert.safe_load import CheckpointError, UnsafeCheckpointError, load_checkpoint, plain

from .conftest import run_cli


class Payload:
    """Unpickling this would create `marker` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


@pytest.mark.parametrize("payload", [Payload, EvalPayload])
def test_reduce_payload_is_refused_and_not_run(tmp_path: Path, capsys, payload) -> None:
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "extra_state": {"x": payload(marker)}}, ckpt)
    with pytest.raises(UnsafeCheckpointError, match="refused to load"):
        load_checkpoint(ckpt)
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and "nothing from it was run" in err and err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_truncated_checkpoint(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_ckpt.read_bytes()[: 1 << 20])
    assert run_cli("convert", "fairseq", cut, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cut}: not a readable PyTorch checkpoint") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", b"not a checkpoint at all\n", bytes(range(256)) * 10])
def test_garbled_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_missing_file(tmp_path: Path, capsys) -> None:
    assert run_cli("convert", "fairseq", tmp_path / "nope.pt", "--out", tmp_path / "out") == 2
    assert "no such file" in capsys.readouterr().err


def test_legacy_format_and_plain_values(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "legacy.pt"
    obj = {
        "model": {"w": torch.arange(3.0)},
        "args": argparse.Namespace(lr=[0.1], best=np.float64(2.0)),
        "extra": {"n": np.int64(4), "a": np.arange(2), "s": {1, 2}},
    }
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], obj["model"]["w"])
    assert plain(loaded["args"]) == {"lr": [0.1], "best": 2.0}
    assert plain(loaded["extra"]) == {"n": 4, "a": [0, 1], "s": {1, 2}}


def test_fairseq_and_omegaconf_objects_are_inert_stubs(tiny_ckpt: Path) -> None:
    """The fixture pickles classes from modules named fairseq.* / omegaconf.*, which do not exist here."""
    checkpoint = load_checkpoint(tiny_ckpt)
    assert plain(checkpoint["extra_state"]["hydra"]) == {"run": {"dir": "outputs"}}
    assert plain(checkpoint["cfg"]["model"])["ddp_backend"] == "c10d"
    assert plain(checkpoint["extra_state"]["val_loss"]) == 1.75
