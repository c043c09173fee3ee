"""`convert fairseq`: exact tensors, equal outputs, config derived from the checkpoint, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ofa_core.convert import pipeline
from ofa_core.convert.fairseq import derive_config
from ofa_core.convert.keys import FAIRSEQ_EMBEDDINGS, expected_buffers, fairseq_to_port, port_to_ofa
from ofa_core.convert.mapping import assemble
from ofa_core.convert.safe_load import load_checkpoint
from ofa_core.convert.verify import fixed_inputs, forward_logits
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.model.processing import OFAProcessor

from .conftest import run_cli
from .fixtures import (
    CN_BASE_NARROW,
    TINY,
    _port_name,
    fairseq_model_state,
    model_namespace,
    save_fairseq_checkpoint,
    task_settings,
)

DROPPED = ("version", "rp_bucket", "image_position_idx")


def expected_ofa_tensors(fairseq_state: dict) -> dict[str, torch.Tensor]:
    """The test's own reading of spec §4.3: rename, drop the buffers, one shared embedding."""
    out = {}
    for key, value in fairseq_state.items():
        if key.endswith(DROPPED) or key in FAIRSEQ_EMBEDDINGS:
            continue
        out["model." + _port_name(key)] = value
    shared = fairseq_state["encoder.embed_tokens.weight"]
    for key in (
        "model.shared.weight",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ):
        out[key] = shared
    return out


def test_tiny_tensors_exact_and_outputs_equal(tiny_ckpt: Path, tiny_dir: Path) -> None:
    source = load_checkpoint(tiny_ckpt)["model"]
    model = OFAForConditionalGeneration.from_pretrained(tiny_dir).eval()
    loaded = model.state_dict()
    expected = expected_ofa_tensors(source)
    assert set(loaded) == set(expected)
    for key, tensor in expected.items():
        assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor), key
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()

    # The same weights loaded by hand into a fresh model give the same logits as the written directory.
    reference = OFAForConditionalGeneration(model.config).eval()
    reference.load_state_dict(expected, strict=True)
    inputs = fixed_inputs(model.config)
    assert torch.equal(forward_logits(reference, inputs), forward_logits(model, inputs))


def test_tiny_config_comes_from_the_checkpoint(tiny_dir: Path) -> None:
    config = OFAConfig.from_pretrained(tiny_dir)
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (32, 2, 2)
    assert (config.encoder_attention_heads, config.encoder_ffn_dim, config.resnet_type) == (4, 64, "resnet18")
    assert (config.vocab_size, config.language, config.code_dict_size, config.num_bins) == (300, "zh", 8, 10)
    assert (config.patch_image_size, config.dropout, config.encoder_drop_path_rate) == (64, 0.1, 0.1)
    assert config.scale_attn and config.scale_fc and config.scale_heads and not config.scale_resids
    assert config.disable_entangle and not config.entangle_position_embedding
    origin = json.loads((tiny_dir / "fairseq_origin.json").read_text())
    assert origin["fairseq_model_args"]["ddp_backend"] == "c10d"  # fairseq enum read as its value
    assert origin["fairseq_task"]["_name"] == "caption"


def test_generation_defaults_follow_the_checkpoints_task(tiny_dir: Path) -> None:
    """A Chinese caption fine-tune generates with MUGE's official search (beam 8, max_len_b 128, no-repeat 3)."""
    from transformers import GenerationConfig

    generation = GenerationConfig.from_pretrained(tiny_dir)
    assert (generation.num_beams, generation.max_new_tokens, generation.no_repeat_ngram_size) == (8, 129, 3)
    from ofa_core.model.search import official_task_search

    assert official_task_search("caption", "en") == "caption"
    assert official_task_search("vqa_gen", "en") == "vqa"
    assert official_task_search("refcoco", "zh") == "grounding"
    assert official_task_search(None, "zh") == "default"


def test_old_args_layout_gives_the_same_model(tmp_path: Path, tiny_dir: Path) -> None:
    ckpt = tmp_path / "old.pt"
    save_fairseq_checkpoint(ckpt, TINY, seed=1, layout="args")
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out", "--no-verify", "--no-tokenizer") == 0
    old = OFAConfig.from_pretrained(tmp_path / "out").to_dict()
    new = OFAConfig.from_pretrained(tiny_dir).to_dict()
    assert old == new


def test_cn_base_shaped_with_tokenizer(cn_base_ckpt: Path, bert_vocab: Path, tmp_path: Path) -> None:
    out = tmp_path / "cn"
    assert run_cli("convert", "fairseq", cn_base_ckpt, "--out", out, "--vocab", bert_vocab) == 0
    config = OFAConfig.from_pretrained(out)
    assert (config.resnet_type, config.encoder_layers, config.decoder_layers) == ("resnet101", 6, 6)
    assert (config.encoder_attention_heads, config.vocab_size, config.language) == (12, 30325, "zh")
    processor = OFAProcessor.from_pretrained(out)
    assert len(processor.tokenizer) == 30325
    assert processor.tokenizer.convert_tokens_to_ids("[UNK]") == 1 + 4  # fairseq id = BERT id + 4
    model = OFAForConditionalGeneration.from_pretrained(out)
    source = load_checkpoint(cn_base_ckpt)["model"]
    loaded = model.state_dict()
    for key, tensor in expected_ofa_tensors(source).items():
        assert torch.equal(loaded[key], tensor), key


def test_full_size_cn_base_maps_completely_on_meta() -> None:
    """Real OFA-CN-Base shapes (967 keys): every key maps and the count matches the published 159.87M."""
    size = {**CN_BASE_NARROW, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "decoder_ffn_embed_dim": 3072}
    state = fairseq_model_state(size, meta=True)
    assert len(state) == 967
    for key in FAIRSEQ_EMBEDDINGS[1:]:
        del state[key]  # one copy suffices here: meta tensors cannot be compared
    args = vars(model_namespace(size))
    config = derive_config(args, task_settings(30325), 30325, "zh", Path("cn_base.pt"))
    mapped, _, _ = assemble(
        state,
        config,
        origin="cn_base.pt",
        embedding_keys=FAIRSEQ_EMBEDDINGS,
        rename=lambda key: port_to_ofa(fairseq_to_port(key)),
        recomputed=expected_buffers(256, 42, 128, 769),
        ignored=("encoder.version", "decoder.version"),
    )
    unique = {
        id(tensor): tensor for key, tensor in mapped.items() if tensor.is_floating_point() and "running_" not in key
    }
    assert sum(tensor.numel() for tensor in unique.values()) == 159_865_160


def test_ema_weights(tmp_path: Path) -> None:
    ckpt = tmp_path / "ema.pt"
    state = save_fairseq_checkpoint(ckpt, TINY, seed=3, ema=True)
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "ema", "--ema", "--no-verify", "--no-tokenizer") == 0
    model = OFAForConditionalGeneration.from_pretrained(tmp_path / "ema")
    key = "encoder.layers.0.fc1.weight"
    assert torch.equal(model.state_dict()["model." + key], state[key] + 1)
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "plain", "--no-verify", "--no-tokenizer") == 0
    assert torch.equal(
        OFAForConditionalGeneration.from_pretrained(tmp_path / "plain").state_dict()["model." + key], state[key]
    )


def test_ema_requested_but_absent(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    assert run_cli("convert", "fairseq", tiny_ckpt, "--out", tmp_path / "x", "--ema") == 2
    assert "no EMA weights" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_imagenet_stats_and_missing_normformer_flags() -> None:
    args = {key: value for key, value in vars(model_namespace(TINY)).items() if not key.startswith("scale_")}
    config = derive_config(args, task_settings(300, imagenet_default_mean_and_std=True), 300, "zh", Path("x.pt"))
    assert config.image_mean == [0.485, 0.456, 0.406] and config.image_std == [0.229, 0.224, 0.225]
    # Absent switches take fairseq's architecture defaults (off), not OFAConfig's (on).
    assert not (config.scale_attn or config.scale_fc or config.scale_heads or config.scale_resids)


def _broken(tmp_path: Path, edit) -> Path:
    state = fairseq_model_state(TINY, seed=4)
    edit(state)
    path = tmp_path / "broken.pt"
    save_fairseq_checkpoint(path, TINY, state=state)
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s.__setitem__("classification_heads.vqa.dense.weight", torch.zeros(2, 2)),
            "unmapped keys: classification_heads.vqa.dense.weight",
        ),
        (
            lambda s: s.pop("decoder.layers.1.cross_attn_ln.bias"),
            "missing keys: model.decoder.layers.1.cross_attn_mid_layer_norm.bias",
        ),
        (
            lambda s: s.__setitem__("encoder.image_proj.bias", torch.zeros(7)),
            "shape mismatches: encoder.image_proj.bias (7,) vs (32,)",
        ),
        (lambda s: s["decoder.token_rp_bucket"].add_(1), "decoder.token_rp_bucket differ from the bucket formulas"),
        (lambda s: s["decoder.output_projection.weight"].mul_(2), "token embedding copies"),
    ],
    ids=["unknown", "missing", "shape", "buffer", "untied"],
)
def test_refuses_partial_models(tmp_path: Path, capsys, edit, expected: str) -> None:
    out = tmp_path / "out"
    assert run_cli("convert", "fairseq", _broken(tmp_path, edit), "--out", out) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "broken.pt"]


def test_unsupported_setting(tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "vit.pt"
    save_fairseq_checkpoint(ckpt, TINY, model_overrides={"resnet_type": "ViT-B/16"})
    assert run_cli("convert", "fairseq", ckpt, "--out", tmp_path / "out") == 2
    assert "resnet_type='ViT-B/16'" in capsys.readouterr().err


def test_existing_output_untouched(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert run_cli("convert", "fairseq", tiny_ckpt, "--out", out) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_failure_after_writing_leaves_nothing(tiny_ckpt: Path, tmp_path: Path, monkeypatch) -> None:
    from ofa_core.convert.verify import VerificationError

    def fail(*args, **kwargs):
        raise VerificationError("simulated mismatch")

    monkeypatch.setattr(pipeline, "verify_directory", fail)
    assert run_cli("convert", "fairseq", tiny_ckpt, "--out", tmp_path / "out", "--no-tokenizer") == 2
    assert list(tmp_path.iterdir()) == []


def test_wrong_vocabulary_size(tiny_ckpt: Path, bert_vocab: Path, tmp_path: Path, capsys) -> None:
    assert run_cli("convert", "fairseq", tiny_ckpt, "--out", tmp_path / "out", "--vocab", bert_vocab) == 2
    assert "tokens but the model has 300 embedding rows" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_scale_resids_and_frozen_batch_norm(tmp_path: Path, capsys) -> None:
    """--scale-resids adds w_resid per layer; --freeze-resnet (FrozenBatchNorm) stores no batch counters."""
    state = fairseq_model_state(TINY, seed=12, scale_resids=True)
    for key in [k for k in state if k.endswith("num_batches_tracked")]:
        del state[key]
    ckpt = tmp_path / "resid.pt"
    save_fairseq_checkpoint(ckpt, TINY, state=state, model_overrides={"scale_resids": True, "freeze_resnet": True})
    out = tmp_path / "out"
    assert run_cli("convert", "fairseq", ckpt, "--out", out, "--no-tokenizer") == 0
    assert "num_batches_tracked counters" in capsys.readouterr().out
    model = OFAForConditionalGeneration.from_pretrained(out)
    assert model.config.scale_resids
    assert torch.equal(model.state_dict()["model.decoder.layers.1.w_resid"], state["decoder.layers.1.w_resid"])
    back = tmp_path / "back.pt"
    assert run_cli("convert", "to-fairseq", out, "--out", back) == 0
    assert set(load_checkpoint(back)["model"]) == set(state)
