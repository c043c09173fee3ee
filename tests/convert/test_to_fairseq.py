"""`convert to-fairseq`: official layout, and fairseq -> ofa_core -> fairseq -> ofa_core is lossless."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ofa_core.convert.safe_load import load_checkpoint

from .conftest import run_cli
from .fixtures import TINY, code_positions, image_buckets, token_buckets, write_port_dir


def _same_directories(a: Path, b: Path) -> None:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    for key in left:
        assert left[key].dtype == right[key].dtype and torch.equal(left[key], right[key]), key
    assert json.loads((a / "config.json").read_text()) == json.loads((b / "config.json").read_text())


def test_round_trip_is_lossless(tiny_ckpt: Path, tiny_dir: Path, tmp_path: Path) -> None:
    back = tmp_path / "back.pt"
    assert run_cli("convert", "to-fairseq", tiny_dir, "--out", back) == 0
    again = tmp_path / "again"
    assert run_cli("convert", "fairseq", back, "--out", again, "--no-tokenizer") == 0
    _same_directories(tiny_dir, again)

    original, exported = load_checkpoint(tiny_ckpt), load_checkpoint(back)
    assert set(exported["model"]) == set(original["model"])
    for key, tensor in original["model"].items():
        assert torch.equal(exported["model"][key], tensor), key
    assert isinstance(exported["cfg"]["model"], argparse.Namespace) and isinstance(exported["cfg"]["task"], dict)
    assert exported["cfg"]["task"]["bpe_dir"] == "utils/BERT_CN_dict"  # original task settings survive
    assert exported["cfg"]["model"].arch == "ofa_tiny" and exported["args"] is None


def test_official_buffers_and_separate_embedding_copies(tiny_dir: Path, tmp_path: Path) -> None:
    back = tmp_path / "back.pt"
    assert run_cli("convert", "to-fairseq", tiny_dir, "--out", back) == 0
    state = load_checkpoint(back)["model"]
    assert torch.equal(state["encoder.version"], torch.Tensor([3]))
    assert torch.equal(state["decoder.token_rp_bucket"], token_buckets(256))
    assert torch.equal(state["encoder.image_rp_bucket"], image_buckets(42))
    assert torch.equal(state["decoder.image_position_idx"], code_positions())
    copies = [state[k] for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                                 "decoder.output_projection.weight")]
    assert all(torch.equal(copies[0], c) for c in copies)
    assert len({c.untyped_storage().data_ptr() for c in copies}) == 3


def test_port_to_fairseq_and_back(tmp_path: Path) -> None:
    src = tmp_path / "port"
    write_port_dir(src, {**TINY, "vocab": 30325}, seed=11)
    first, back, second = tmp_path / "first", tmp_path / "back.pt", tmp_path / "second"
    assert run_cli("convert", "port", src, "--out", first, "--no-verify") == 0
    assert run_cli("convert", "to-fairseq", first, "--out", back) == 0
    cfg = load_checkpoint(back)["cfg"]
    assert cfg["task"]["_name"] == "caption" and cfg["task"]["bpe"] == "bert"
    assert cfg["model"].scale_heads and cfg["model"].encoder_embed_dim == 32
    assert run_cli("convert", "fairseq", back, "--out", second, "--no-verify", "--no-tokenizer") == 0
    _same_directories(first, second)


def test_not_a_model_directory(tmp_path: Path, capsys) -> None:
    assert run_cli("convert", "to-fairseq", tmp_path, "--out", tmp_path / "x.pt") == 2
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
