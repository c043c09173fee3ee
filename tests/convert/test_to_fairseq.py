"""`convert to-fairseq`: official layout, and fairseq -> ofa_core -> fairseq -> ofa_core is lossless."""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file

from ofa_core.convert.safe_load import load_checkpoint, plain

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
    copies = [
        state[k]
        for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight")
    ]
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


# ---- the whole cfg, as the official code reads it ---------------------------------------------------------------

GROUPS = {
    "_name",
    "common",
    "common_eval",
    "checkpoint",
    "dataset",
    "distributed_training",
    "generation",
    "optimization",
    "optimizer",
    "lr_scheduler",
    "criterion",
    "bpe",
    "tokenizer",
    "scoring",
    "ema",
    "bmuf",
    "eval_lm",
    "interactive",
    "simul_type",
    "model",
    "task",
}
"""The groups of a checkpoint fairseq's training saves (fairseq/dataclass/configs.py FairseqConfig)."""


def _saved_tiny(tmp_path: Path, **overrides) -> Path:
    from ofa_core.testing import tiny_model

    directory = tmp_path / "trained"
    tiny_model(3, **overrides).save_pretrained(directory)
    return directory


def test_a_model_trained_here_gets_the_official_scripts_whole_cfg(tmp_path: Path, capsys) -> None:
    from ofa_core.convert.official_cfg import official_cfg

    directory, back = _saved_tiny(tmp_path), tmp_path / "back.pt"
    assert run_cli("convert", "to-fairseq", directory, "--out", back) == 0
    assert "cfg from official caption_cn" in capsys.readouterr().out  # a Chinese model without ofa_task.json
    cfg = load_checkpoint(back)["cfg"]
    assert set(cfg) == GROUPS
    official = official_cfg("caption_cn")
    for group in GROUPS - {"model", "task"}:
        assert cfg[group] == official[group], group
    # The values run_scripts/caption/train_caption_stage1_base.sh sets, read off the script by hand.
    assert cfg["optimization"]["lr"] == [1e-5] and cfg["optimization"]["max_epoch"] == 5
    assert cfg["criterion"]["_name"] == "adjust_label_smoothed_cross_entropy"
    assert cfg["criterion"]["label_smoothing"] == 0.1
    assert cfg["lr_scheduler"]["warmup_ratio"] == 0.06 and cfg["dataset"]["batch_size"] == 8
    assert cfg["task"]["_name"] == "caption" and cfg["task"]["bpe"] == "bert" and cfg["task"]["max_tgt_length"] == 20
    model = cfg["model"]
    assert isinstance(model, argparse.Namespace) and model.arch == "ofa_base"  # the script's arch, sized as ours
    dims = (model.encoder_embed_dim, model.decoder_embed_dim, model.decoder_input_dim, model.decoder_output_dim)
    assert dims == (32, 32, 32, 32)
    assert (model.encoder_layers, model.decoder_layers, model.resnet_type) == (2, 2, "resnet18")
    assert "ema" not in load_checkpoint(back)["extra_state"]  # the caption script keeps no EMA copy


def test_task_chooses_the_script_and_ema_tasks_carry_the_copy_evaluate_reads(tmp_path: Path, capsys) -> None:
    directory, back = _saved_tiny(tmp_path, language="en", vocab_size=200), tmp_path / "vqa.pt"
    assert run_cli("convert", "to-fairseq", directory, "--out", back, "--task", "vqa_gen") == 0
    checkpoint = load_checkpoint(back)
    cfg = checkpoint["cfg"]
    assert cfg["task"]["_name"] == "vqa_gen" and cfg["task"]["prompt_type"] == "prev_output"
    assert cfg["ema"]["store_ema"] is True and cfg["model"].freeze_encoder_embedding
    ema = checkpoint["extra_state"]["ema"]
    assert ema.keys() == checkpoint["model"].keys()
    assert all(torch.equal(ema[key], checkpoint["model"][key]) for key in ema)


def test_what_fairseq_cannot_take_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    english = _saved_tiny(tmp_path, language="en", vocab_size=200)
    assert run_cli("convert", "to-fairseq", english, "--out", tmp_path / "a.pt", "--task", "caption_cn") == 2
    assert "its script is for zh models, this model is en" in capsys.readouterr().err
    assert run_cli("convert", "to-fairseq", english, "--out", tmp_path / "b.pt", "--task", "image_gen") == 2
    err = capsys.readouterr().err
    assert "--task image_gen: not an official fine-tuning script; choose one of" in err and "glue_sst2" in err
    (english / "adapter_config.json").write_text("{}")
    assert run_cli("convert", "to-fairseq", english, "--out", tmp_path / "c.pt") == 2
    assert "parameter-efficient delta (adapter_config.json)" in capsys.readouterr().err
    odd = _saved_tiny(tmp_path / "odd", image_mean=[0.4, 0.4, 0.4])
    assert run_cli("convert", "to-fairseq", odd, "--out", tmp_path / "d.pt") == 2
    err = capsys.readouterr().err
    assert "fairseq OFA knows only 0.5 or ImageNet's statistics" in err and len(err.strip().splitlines()) == 1
    assert not any((tmp_path / name).exists() for name in ("a.pt", "b.pt", "c.pt", "d.pt"))


def test_official_task_names_of_converted_checkpoints() -> None:
    from ofa_core.convert.official_cfg import entry_for, official_tasks

    assert entry_for("caption", "zh") == "caption_cn" and entry_for("caption", "en") == "caption"
    assert entry_for("refcoco", "zh") == "refcoco_cn" and entry_for("sst2", "en") == "glue_sst2"
    assert entry_for("ocr", "zh") == "ocr" and entry_for("vqa_gen", "en") == "vqa_gen"
    assert entry_for("image_gen", "en") is None and len(official_tasks()) == 16


def test_a_converted_checkpoint_gets_its_own_cfg_and_dtype_back(tmp_path: Path) -> None:
    from .fixtures import fairseq_model_state, save_fairseq_checkpoint

    original = tmp_path / "half.pt"
    half = OrderedDict(
        (key, value.half() if value.is_floating_point() and "bucket" not in key else value)
        for key, value in fairseq_model_state(TINY, seed=4).items()
    )
    save_fairseq_checkpoint(original, TINY, seed=4, state=half)
    directory, back = tmp_path / "dir", tmp_path / "back.pt"
    assert run_cli("convert", "fairseq", original, "--out", directory, "--no-tokenizer") == 0
    assert run_cli("convert", "to-fairseq", directory, "--out", back) == 0
    before, after = load_checkpoint(original), load_checkpoint(back)
    assert after["model"].keys() == before["model"].keys()
    for key, tensor in before["model"].items():  # bit for bit, in the file's own dtype
        assert after["model"][key].dtype == tensor.dtype and torch.equal(after["model"][key], tensor), key
    # The whole cfg as it was, model arguments included (no key added, none changed).
    assert plain(after["cfg"]) == plain(before["cfg"]) and isinstance(after["cfg"]["model"], argparse.Namespace)


def test_weights_changed_since_conversion_keep_their_precision_and_describe_themselves(tmp_path: Path) -> None:
    from ofa_core.model.modeling import OFAForConditionalGeneration

    from .fixtures import fairseq_model_state, save_fairseq_checkpoint

    original = tmp_path / "half.pt"
    half = OrderedDict(
        (key, value.half() if value.is_floating_point() and "bucket" not in key else value)
        for key, value in fairseq_model_state(TINY, seed=4).items()
    )
    save_fairseq_checkpoint(original, TINY, seed=4, state=half)
    directory, back, again = tmp_path / "dir", tmp_path / "back.pt", tmp_path / "again"
    assert run_cli("convert", "fairseq", original, "--out", directory, "--no-tokenizer") == 0
    model = OFAForConditionalGeneration.from_pretrained(directory)
    with torch.no_grad():  # a fine-tuning step here: values float16 cannot hold, and another dropout
        model.model.encoder.layers[0].fc1.weight.add_(1e-6)
    model.config.dropout = 0.25
    model.save_pretrained(directory)
    assert run_cli("convert", "to-fairseq", directory, "--out", back) == 0
    written = load_checkpoint(back)
    assert {value.dtype for value in written["model"].values() if value.is_floating_point()} == {torch.float32}
    assert written["cfg"]["model"].dropout == 0.25
    assert written["cfg"]["common"] == load_checkpoint(original)["cfg"]["common"]
    assert run_cli("convert", "fairseq", back, "--out", again, "--no-tokenizer") == 0
    _same_directories(directory, again)


def test_a_model_trained_here_goes_to_fairseq_and_back_bit_for_bit(tmp_path: Path) -> None:
    from ofa_core.convert.official_cfg import official_cfg

    directory = _saved_tiny(tmp_path, language="en", vocab_size=200)
    back, again = tmp_path / "back.pt", tmp_path / "again"
    assert run_cli("convert", "to-fairseq", directory, "--out", back, "--task", "refcoco") == 0
    model = load_checkpoint(back)["cfg"]["model"]
    official = {key for key in official_cfg("refcoco")["model"] if key != "__namespace__"}
    assert set(vars(model)) == official  # exactly the arguments the official script's checkpoint holds
    assert model.vocab_size == 200 and model.bpe is None  # English scripts leave the global --bpe unset
    assert run_cli("convert", "fairseq", back, "--out", again, "--no-tokenizer") == 0
    _same_directories(directory, again)


def test_task_of_another_language_is_refused_for_converted_models_too(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    assert run_cli("convert", "to-fairseq", tiny_dir, "--out", tmp_path / "x.pt", "--task", "caption") == 2
    assert "its script is for en models, this model is zh" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_the_docs_to_fairseq_commands_run_verbatim(tiny_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """docs/checkpoints.md's `to-fairseq` lines, in a folder laid out as the page assumes."""
    import shlex
    import shutil

    page = Path(__file__).parents[2] / "docs" / "checkpoints.md"
    lines = [
        line
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("python -m ofa_core convert to-fairseq ")
    ]
    assert len(lines) == 2
    shutil.copytree(tiny_dir, tmp_path / "models" / "ofa-cn-base-muge")  # converted from fairseq
    (tmp_path / "runs" / "refcoco").mkdir(parents=True)  # and a model trained here
    _saved_tiny(tmp_path, language="en", vocab_size=200).rename(tmp_path / "runs/refcoco/checkpoint-best")
    monkeypatch.chdir(tmp_path)
    for line in lines:
        assert run_cli(*shlex.split(line)[3:]) == 0, line
    assert "cfg from the original checkpoint's cfg" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "caption_cn_base_again.pt")["cfg"]["task"]["bpe"] == "bert"
    assert load_checkpoint(tmp_path / "refcoco_mine.pt")["cfg"]["task"]["_name"] == "refcoco"
