"""`convert port` and on-the-fly port loading, for both published port layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ofa_core.convert import port as port_module
from ofa_core.convert.port import is_port_checkpoint, read_port_if_any
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.model.processing import OFAProcessor

from .conftest import run_cli
from .fixtures import TINY, write_port_dir

ZH, EN = {**TINY, "vocab": 30325}, {**TINY, "vocab": 59457}


def _expected(port_state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    for key, value in port_state.items():
        key = key[len(prefix) :]
        if key.endswith(("rp_bucket", "image_position_idx")) or key in (
            "encoder.embed_tokens.weight",
            "decoder.embed_tokens.weight",
            "decoder.output_projection.weight",
        ):
            continue
        out["model." + key] = value
    out["model.shared.weight"] = out["lm_head.weight"] = port_state[prefix + "encoder.embed_tokens.weight"]
    return out


def _check(out: Path, expected: dict[str, torch.Tensor]) -> OFAForConditionalGeneration:
    model = OFAForConditionalGeneration.from_pretrained(out)
    loaded = model.state_dict()
    for key, tensor in expected.items():
        assert torch.equal(loaded[key], tensor), key
    return model


def test_chinese_port_bin_layout(tmp_path: Path) -> None:
    src = tmp_path / "ofa-cn"
    state = write_port_dir(src, ZH, seed=5, tokenizer=True)
    assert is_port_checkpoint(src)
    out = tmp_path / "out"
    assert run_cli("convert", "port", src, "--out", out) == 0
    _check(out, _expected(state))
    config = OFAConfig.from_pretrained(out)
    assert (config.language, config.scale_attn, config.scale_heads, config.patch_image_size) == ("zh", True, True, 256)
    assert not is_port_checkpoint(out)
    tokenizer = OFAProcessor.from_pretrained(out).tokenizer
    port_vocab = (src / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    for token in ("<s>", "<pad>", "</s>", "<unk>", "[UNK]", port_vocab[500], "<mask>"):
        assert tokenizer.convert_tokens_to_ids(token) == port_vocab.index(token)
    assert (
        tokenizer.convert_tokens_to_ids("<code_0>") == 21133 and tokenizer.convert_tokens_to_ids("<bin_999>") == 30324
    )


def test_english_port_safetensors_with_prefix(tmp_path: Path) -> None:
    src = tmp_path / "ofa-tiny"
    state = write_port_dir(src, EN, seed=6, tokenizer=True, safetensors=True, prefix="model.")
    out = tmp_path / "out"
    assert run_cli("convert", "port", src, "--out", out) == 0
    _check(out, _expected(state, prefix="model."))
    tokenizer = OFAProcessor.from_pretrained(out).tokenizer
    vocab = json.loads((src / "vocab.json").read_text(encoding="utf-8"))
    merged = next(token for token, index in vocab.items() if index == 4000)
    assert tokenizer.convert_tokens_to_ids(merged) == 4000
    assert len(tokenizer) == 59457


def test_port_without_tokenizer_files(tmp_path: Path, capsys) -> None:
    src = tmp_path / "bare"
    write_port_dir(src, ZH, seed=7)
    assert run_cli("convert", "port", src, "--out", tmp_path / "out", "--no-verify") == 0
    assert "tokenizer    MISSING" in capsys.readouterr().out


def test_read_port_for_from_pretrained(tmp_path: Path) -> None:
    src = tmp_path / "port"
    state = write_port_dir(src, ZH, seed=8)
    config, converted = read_port_if_any(str(src))
    model = OFAForConditionalGeneration(config)
    model.load_state_dict(converted, strict=True)
    for key, tensor in _expected(state).items():
        assert torch.equal(model.state_dict()[key], tensor)


def test_port_with_wrong_position_buffer(tmp_path: Path, capsys) -> None:
    src = tmp_path / "port"
    state = write_port_dir(src, ZH, seed=9)
    state["decoder.image_position_idx"] = torch.arange(1025)
    torch.save(state, src / "pytorch_model.bin")
    assert run_cli("convert", "port", src, "--out", tmp_path / "out") == 2
    assert "decoder.image_position_idx differ from the bucket formulas" in capsys.readouterr().err


def test_hub_download_failure_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("Name or service not known\nmore detail")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert run_cli("convert", "port", "YeungNLP/ofa-cn-base", "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: YeungNLP/ofa-cn-base: download from the Hugging Face hub failed")
        and err.count("\n") == 1
    )


def test_hub_id_download_is_used(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "snapshot"
    write_port_dir(src, ZH, seed=10)
    calls = []

    def fake_download(repo_id: str, allow_patterns: list[str]) -> str:
        calls.append(repo_id)
        return str(src)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_download)
    assert port_module.resolve_source("YeungNLP/ofa-cn-base") == src and calls == ["YeungNLP/ofa-cn-base"]


@pytest.mark.parametrize(
    "config", [{"model_type": "bart"}, {"model_type": "ofa", "scale_attn": True, "language": "zh"}]
)
def test_not_a_port(tmp_path: Path, config: dict) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert not is_port_checkpoint(tmp_path)


def test_from_pretrained_converts_a_port_directory_on_the_fly(tmp_path: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM

    src = tmp_path / "port"
    state = write_port_dir(src, ZH, seed=10)
    model = AutoModelForSeq2SeqLM.from_pretrained(src)
    assert isinstance(model, OFAForConditionalGeneration) and not model.training
    assert model.lm_head.weight is model.model.shared.weight
    for key, tensor in _expected(state).items():
        assert torch.equal(model.state_dict()[key], tensor), key
    from ofa_core.model.modeling import OFAModel

    base = OFAModel.from_pretrained(src)
    assert torch.equal(base.shared.weight, state["encoder.embed_tokens.weight"])
