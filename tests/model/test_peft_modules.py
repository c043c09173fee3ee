"""Official OFA's prompt and adapter modules: off by default, official names and shapes, cache and search."""

from __future__ import annotations

import json

import pytest
import torch
from test_modeling import VOCAB, make_inputs, reference_beam_search

from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.testing import incremental_and_full_logits, tiny_model

PREFIX = dict(encoder_prompt=True, decoder_prompt=True, encoder_prompt_length=3, decoder_prompt_length=2)
PROJECTED = dict(
    PREFIX, encoder_prompt_projection=True, decoder_prompt_projection=True, encoder_prompt_dim=8, decoder_prompt_dim=6
)
FIRST_LAYER = dict(PREFIX, encoder_prompt_type="prompt", decoder_prompt_type="prompt")
ADAPTER = dict(adapter=True, adapter_dim=5)
COMBINATIONS = {
    "prefix": PREFIX,
    "prefix-projection": PROJECTED,
    "prompt-type": FIRST_LAYER,
    "adapter": ADAPTER,
    "encoder-only": dict(encoder_prompt=True, encoder_prompt_length=4),
    "decoder-only-projection-adapter": dict(
        decoder_prompt=True, decoder_prompt_length=3, decoder_prompt_projection=True, **ADAPTER
    ),
    "all": dict(PROJECTED, **ADAPTER),
}


@pytest.fixture(scope="module")
def models() -> dict[str, OFAForConditionalGeneration]:
    return {name: tiny_model(seed=0, vocab_size=VOCAB, **overrides) for name, overrides in COMBINATIONS.items()}


@pytest.fixture(scope="module")
def plain() -> OFAForConditionalGeneration:
    return tiny_model(seed=0, vocab_size=VOCAB)


def test_modules_are_off_by_default_and_old_configs_load_unchanged(plain, tmp_path):
    config = OFAConfig.from_preset("tiny-test")
    assert not (config.encoder_prompt or config.decoder_prompt or config.adapter)
    assert config.encoder_prompt_length == 100 and config.adapter_dim == 200
    assert config.encoder_prompt_dim == config.decoder_prompt_dim == 2 * config.d_model
    names = list(plain.state_dict())
    assert not [name for name in names if "prompt" in name or "adapter" in name]
    config.save_pretrained(tmp_path)
    stored = json.loads((tmp_path / "config.json").read_text())
    old = {key: value for key, value in stored.items() if "prompt" not in key and not key.startswith("adapter")}
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert OFAConfig.from_pretrained(tmp_path).to_dict() == config.to_dict()


def test_parameter_names_and_shapes_are_the_official_ones(models):
    d, layers = 32, 2
    shapes = {name: tuple(value.shape) for name, value in models["all"].state_dict().items()}
    assert shapes["model.encoder.encoder_prompt_encoder.embedding.weight"] == (3, d)
    assert shapes["model.encoder.encoder_prompt_encoder.trans.0.weight"] == (8, d)
    assert shapes["model.encoder.encoder_prompt_encoder.trans.2.weight"] == (layers * 2 * d, 8)
    assert shapes["model.decoder.decoder_prompt_encoder.trans.2.bias"] == (layers * 2 * d,)
    for stack in ("encoder", "decoder"):
        for index in range(layers):
            assert shapes[f"model.{stack}.layers.{index}.adapter.down_proj.weight"] == (5, d)
            assert shapes[f"model.{stack}.layers.{index}.adapter.up_proj.weight"] == (d, 5)
    prefix = {name: tuple(value.shape) for name, value in models["prefix"].state_dict().items() if "prompt" in name}
    assert prefix == {
        "model.encoder.encoder_prompt_encoder.embedding.weight": (3, layers * 2 * d),
        "model.decoder.decoder_prompt_encoder.embedding.weight": (2, layers * 2 * d),
    }
    first = {name: tuple(value.shape) for name, value in models["prompt-type"].state_dict().items() if "prompt" in name}
    assert set(first.values()) == {(3, 2 * d), (2, 2 * d)}


def test_each_module_changes_the_output_and_a_zero_adapter_is_the_identity(models, plain):
    ids, images = make_inputs(seed=3)
    decoder_ids = ids[:, :4]
    with torch.no_grad():
        base = plain(input_ids=ids, patch_images=images, decoder_input_ids=decoder_ids).logits
        for name in ("prefix", "prefix-projection", "prompt-type", "adapter", "encoder-only"):
            logits = models[name](input_ids=ids, patch_images=images, decoder_input_ids=decoder_ids).logits
            assert (logits - base).abs().max() > 1e-2, name
        adapter = tiny_model(seed=0, vocab_size=VOCAB, **ADAPTER)
        for stack in (adapter.model.encoder, adapter.model.decoder):
            for layer in stack.layers:
                layer.adapter.up_proj.weight.zero_()
                layer.adapter.up_proj.bias.zero_()
        zeroed = adapter(input_ids=ids, patch_images=images, decoder_input_ids=decoder_ids).logits
    assert torch.allclose(zeroed, base, atol=1e-5)


def test_prompt_type_uses_the_first_layer_only(models):
    ids, images = make_inputs(seed=4)
    model = models["prompt-type"]
    with torch.no_grad():
        encoded = model.get_encoder()(ids, patch_images=images)
        prompts = model.model.decoder.prompt_key_values()
    assert len(prompts) == 1 and prompts[0][0].shape == (1, 4, 2, 8)
    assert encoded.padding_mask.shape == (2, ids.shape[1] + 16)


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_incremental_decoding_and_official_search_match_full_recomputation(models, name):
    model = models[name]
    ids, images = make_inputs(seed=1)
    decoder_ids = torch.randint(4, VOCAB, (2, 6), generator=torch.Generator().manual_seed(3))
    decoder_ids[:, 0] = 0
    incremental, full = incremental_and_full_logits(model, ids, images, decoder_ids)
    assert (incremental - full).abs().max() <= 1e-5
    beam = 3
    out = model.generate(
        input_ids=ids,
        patch_images=images,
        num_beams=beam,
        max_new_tokens=4,
        num_return_sequences=beam,
        return_dict_in_generate=True,
    )
    # The second row's beams, searched beside the first's, against a plain search of that row alone.
    expected = reference_beam_search(model, ids[1:], images[1:], beam, 3)
    for rank, (tokens, score) in enumerate(expected):
        assert out.sequences[beam + rank][1 : 1 + len(tokens)].tolist() == tokens, (name, rank)
        assert abs(float(out.sequences_scores[beam + rank]) - score) < 1e-4


def test_padded_rows_match_each_row_alone_with_prompts(models):
    model = models["all"]
    generator = torch.Generator().manual_seed(5)
    ids = torch.full((2, 7), model.config.pad_token_id)
    for row, length in enumerate((7, 4)):
        ids[row, :length] = torch.randint(4, VOCAB, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = 0, 2
    images = torch.randn(2, 3, 64, 64, generator=generator)
    decoder_ids = torch.tensor([[0, 9, 8, 7], [0, 5, 1, 1]])
    with torch.no_grad():
        batched = model(input_ids=ids, patch_images=images, decoder_input_ids=decoder_ids).logits
        alone = model(input_ids=ids[1:, :4], patch_images=images[1:], decoder_input_ids=decoder_ids[1:, :2]).logits
    assert (batched[1, :2] - alone[0]).abs().max() < 1e-4


def test_training_drops_prompts_per_sample_and_trains_only_what_is_asked(models):
    model = tiny_model(seed=0, vocab_size=VOCAB, **COMBINATIONS["all"])
    encoder_prompt = model.model.encoder.encoder_prompt_encoder
    model.train()
    torch.manual_seed(0)
    keys, _ = encoder_prompt(2)[0]
    assert keys.shape == (2, 4, 3, 8) and not torch.equal(keys[0], keys[1])
    assert 0.1 < float((keys == 0).float().mean()) < 0.3
    ids, images = make_inputs(seed=6)
    labels = ids[:, 1:4].clone()
    model.requires_grad_(False)
    for module in (encoder_prompt, model.model.decoder.decoder_prompt_encoder):
        module.requires_grad_(True)
    model(input_ids=ids, patch_images=images, labels=labels).loss.backward()
    trained = {name for name, parameter in model.named_parameters() if parameter.grad is not None}
    assert trained == {name for name, _ in model.named_parameters() if "prompt_encoder" in name}
    assert all(float(model.get_parameter(name).grad.abs().sum()) > 0 for name in trained)


def test_save_and_load_keep_the_modules(models, tmp_path):
    model = models["all"]
    model.save_pretrained(tmp_path)
    loaded = OFAForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.decoder_prompt_projection and loaded.config.adapter_dim == 5
    ids, images = make_inputs(seed=8)
    with torch.no_grad():
        expected = model(input_ids=ids, patch_images=images, decoder_input_ids=ids[:, :3]).logits
        actual = loaded(input_ids=ids, patch_images=images, decoder_input_ids=ids[:, :3]).logits
    assert torch.equal(expected, actual)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("encoder_prompt_type", "instance", "encoder_prompt_type 'instance' is not one of prefix, prompt"),
        ("decoder_prompt_length", 0, "decoder_prompt_length must be at least 1"),
        ("adapter_dim", 0, "adapter_dim must be at least 1"),
    ],
)
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        OFAConfig.from_preset("tiny-test", **{field: value})
