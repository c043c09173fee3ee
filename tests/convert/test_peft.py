"""Official checkpoints trained with prompt tuning or adapters: flags from cfg.model, weights mapped, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ofa_core.convert.safe_load import load_checkpoint
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.testing import tiny_model

from .conftest import run_cli
from .fixtures import TINY, save_fairseq_checkpoint
from .test_fairseq import expected_ofa_tensors

PEFT = {
    "prefix": {
        "encoder_prompt": True,
        "decoder_prompt": True,
        "encoder_prompt_type": "prefix",
        "decoder_prompt_type": "prefix",
        "encoder_prompt_length": 5,
        "decoder_prompt_length": 3,
    },
    "projection-adapter": {
        "encoder_prompt": True,
        "encoder_prompt_projection": True,
        "encoder_prompt_length": 4,
        "encoder_prompt_dim": 12,
        "decoder_prompt": True,
        "decoder_prompt_projection": True,
        "decoder_prompt_length": 2,
        "decoder_prompt_dim": 10,
        "adapter": True,
        "adapter_dim": 6,
    },
    "adapter": {"adapter": True, "adapter_dim": 7},
}


@pytest.fixture(scope="module", params=sorted(PEFT))
def converted(request, tmp_path_factory) -> tuple[str, Path, Path]:
    folder = tmp_path_factory.mktemp(f"peft-{request.param}")
    ckpt, out = folder / "official.pt", folder / "converted"
    save_fairseq_checkpoint(ckpt, TINY, seed=3, peft=PEFT[request.param])
    assert run_cli("convert", "fairseq", ckpt, "--out", out, "--no-tokenizer") == 0
    return request.param, ckpt, out


def test_flags_come_from_cfg_and_every_weight_maps_exactly(converted) -> None:
    name, ckpt, out = converted
    flags = PEFT[name]
    config = OFAConfig.from_pretrained(out)
    for key, value in flags.items():
        assert getattr(config, key) == value, key
    for side in ("encoder", "decoder"):
        if not flags.get(f"{side}_prompt"):
            assert not getattr(config, f"{side}_prompt")
    model = OFAForConditionalGeneration.from_pretrained(out)
    expected = expected_ofa_tensors(load_checkpoint(ckpt)["model"])
    loaded = model.state_dict()
    assert set(loaded) == set(expected)
    assert all(torch.equal(loaded[key], tensor) for key, tensor in expected.items())
    assert any("prompt_encoder" in key or ".adapter." in key for key in loaded)


def test_round_trip_to_fairseq_is_bit_equal(converted, tmp_path: Path) -> None:
    _name, ckpt, out = converted
    back, again = tmp_path / "back.pt", tmp_path / "again"
    assert run_cli("convert", "to-fairseq", out, "--out", back) == 0
    original, exported = load_checkpoint(ckpt), load_checkpoint(back)
    assert set(exported["model"]) == set(original["model"])
    assert all(torch.equal(exported["model"][key], tensor) for key, tensor in original["model"].items())
    exported_args, original_args = vars(exported["cfg"]["model"]), vars(original["cfg"]["model"])
    assert exported_args.keys() == original_args.keys()
    assert all(exported_args[key] == original_args[key] for key in original_args if key != "ddp_backend")
    assert run_cli("convert", "fairseq", back, "--out", again, "--no-tokenizer") == 0
    first, second = load_file(out / "model.safetensors"), load_file(again / "model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


def test_a_model_directory_exports_its_flags(tmp_path: Path) -> None:
    flags = {**PEFT["projection-adapter"], "encoder_prompt_length": 3}
    model = tiny_model(seed=2, vocab_size=300, **flags)
    model.save_pretrained(tmp_path / "model")
    assert run_cli("convert", "to-fairseq", tmp_path / "model", "--out", tmp_path / "x.pt", "--task", "caption_cn") == 0
    args = vars(load_checkpoint(tmp_path / "x.pt")["cfg"]["model"])
    assert {key: args[key] for key in flags} == flags
    assert args["encoder_prompt_type"] == args["decoder_prompt_type"] == "prefix"
    assert run_cli("convert", "fairseq", tmp_path / "x.pt", "--out", tmp_path / "back", "--no-tokenizer") == 0
    back = OFAConfig.from_pretrained(tmp_path / "back")
    assert all(getattr(back, key) == value for key, value in flags.items())


def test_prompt_type_is_refused_both_ways(tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "prompt.pt"
    flags = {**PEFT["prefix"], "decoder_prompt_type": "prompt"}
    save_fairseq_checkpoint(ckpt, TINY, peft=PEFT["prefix"], model_overrides=flags)
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cfg.model.decoder_prompt_type='prompt'" in err and "prefix" in err
    assert not (tmp_path / "out").exists()
    tiny_model(
        seed=0, vocab_size=300, encoder_prompt=True, encoder_prompt_type="prompt", encoder_prompt_length=2
    ).save_pretrained(tmp_path / "model")
    assert run_cli("convert", "to-fairseq", tmp_path / "model", "--out", tmp_path / "x.pt", "--task", "caption_cn") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "encoder_prompt_type 'prompt'" in err and not (tmp_path / "x.pt").exists()


def test_a_bitfit_checkpoint_is_an_ordinary_one(tmp_path: Path) -> None:
    ckpt = tmp_path / "bitfit.pt"
    save_fairseq_checkpoint(ckpt, TINY, seed=5, model_overrides={"bitfit": True})
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out", "--no-tokenizer") == 0
    config = OFAConfig.from_pretrained(tmp_path / "out")
    assert not (config.encoder_prompt or config.decoder_prompt or config.adapter)
