"""The model: presets, save/load, cache, generation, padding and masking behaviour."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM

import ofa_core  # noqa: F401  (registers the Auto classes)
from ofa_core.model.configuration import OFAConfig
from ofa_core.model.modeling import OFAForConditionalGeneration
from ofa_core.model.modeling.positions import image_bucket_table, image_relative_buckets, text_relative_buckets
from ofa_core.testing import incremental_and_full_logits, tiny_model

VOCAB = 300


@pytest.fixture(scope="module")
def model() -> OFAForConditionalGeneration:
    return tiny_model(seed=0, vocab_size=VOCAB)


def make_inputs(seed: int = 0, batch: int = 2, length: int = 6):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = 0, 2
    images = torch.randn(batch, 3, 64, 64, generator=generator)
    return ids, images


# Parameter counts computed from the official module tree (spec §2.1), shared embedding counted once.
OFFICIAL_PARAMS = {
    "ofa-tiny": 33_488_336,
    "ofa-medium": 92_892_000,
    "ofa-base": 182_238_536,
    "ofa-large": 472_977_152,
    "ofa-huge": 929_486_848,
    "ofa-cn-base": 159_865_160,
    "ofa-cn-large": 443_145_984,
}
PUBLISHED_MILLIONS = {"ofa-cn-base": 160, "ofa-cn-large": 443, "ofa-base": 180, "ofa-large": 470}


@pytest.mark.parametrize("preset", sorted(OFFICIAL_PARAMS))
def test_preset_parameter_count_matches_official(preset):
    with torch.device("meta"):
        model = OFAForConditionalGeneration(OFAConfig.from_preset(preset))
    count = sum(parameter.numel() for parameter in model.parameters())
    assert abs(count - OFFICIAL_PARAMS[preset]) < 1000
    if preset in PUBLISHED_MILLIONS:
        assert abs(count / 1e6 - PUBLISHED_MILLIONS[preset]) / PUBLISHED_MILLIONS[preset] < 0.02


def test_unknown_preset_names_the_choices():
    with pytest.raises(KeyError, match="ofa-cn-base"):
        OFAConfig.from_preset("ofa-giant")


def test_embeddings_are_one_tied_matrix(model):
    shared = model.model.shared.weight
    assert model.lm_head.weight is shared
    assert model.model.encoder.embed_tokens.weight is shared
    assert model.model.decoder.embed_tokens.weight is shared


def test_save_load_round_trip_is_bit_identical(model, tmp_path):
    ids, images = make_inputs()
    decoder_ids = ids[:, :4]
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "ofa"
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, OFAForConditionalGeneration)
    assert loaded.lm_head.weight is loaded.model.shared.weight
    with torch.no_grad():
        expected = model(input_ids=ids, patch_images=images, decoder_input_ids=decoder_ids).logits
        actual = loaded(input_ids=ids, patch_images=images, decoder_input_ids=decoder_ids).logits
    assert torch.equal(expected, actual)
    assert loaded.generation_config.num_beams == model.generation_config.num_beams


def test_incremental_decoding_matches_full_recomputation(model):
    ids, images = make_inputs(seed=1)
    decoder_ids = torch.randint(4, VOCAB, (2, 7), generator=torch.Generator().manual_seed(3))
    decoder_ids[:, 0] = 0
    incremental, full = incremental_and_full_logits(model, ids, images, decoder_ids)
    assert incremental.shape == full.shape == (2, 7, model.config.vocab_size)
    assert (incremental - full).abs().max() <= 1e-5


def test_the_incremental_check_sees_a_cache_that_loses_positions(model):
    """The shared check must fail a model whose cache forgets earlier tokens, or it proves nothing."""
    ids, images = make_inputs(seed=1)
    decoder_ids = torch.randint(4, VOCAB, (2, 5), generator=torch.Generator().manual_seed(3))
    decoder_ids[:, 0] = 0
    forward = model.forward

    def forgetful(**kwargs):
        return forward(**{**kwargs, "cache": None})

    model.forward = forgetful
    try:
        incremental, full = incremental_and_full_logits(model, ids, images, decoder_ids)
    finally:
        del model.forward
    assert (incremental - full).abs().max() > 1e-3


def test_encoder_runs_once_and_beams_share_cross_keys(model):
    ids, images = make_inputs(seed=2)
    calls = []
    handle = model.model.encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        model.generate(input_ids=ids, patch_images=images, num_beams=4, max_new_tokens=5)
    finally:
        handle.remove()
    assert len(calls) == 1


def test_patch_masks_false_ignores_the_image(model):
    ids, images = make_inputs(seed=4)
    masks = torch.tensor([False, True])
    other = images.clone()
    other[0] = torch.randn(3, 64, 64)
    decoder_ids = ids[:, :3]
    with torch.no_grad():
        a = model(input_ids=ids, patch_images=images, patch_masks=masks, decoder_input_ids=decoder_ids).logits
        b = model(input_ids=ids, patch_images=other, patch_masks=masks, decoder_input_ids=decoder_ids).logits
    assert torch.allclose(a[0], b[0], atol=1e-6)
    assert not torch.allclose(a[1], b[1].roll(1, dims=-1))


def test_text_only_inputs_work(model):
    ids, _ = make_inputs(seed=5)
    sequences = model.generate(input_ids=ids, num_beams=2, max_new_tokens=4)
    assert sequences.shape[0] == 2 and bool((sequences[:, 0] == 0).all())


def test_text_relative_buckets_match_official_spot_values():
    # rel -> bucket pairs from the official 256-bucket / 1024-position table (spec §1.7)
    spots = {0: 0, 127: 127, 128: 128, 129: 129, 130: 129, 140: 134, 200: 156, 256: 171, 512: 213, 1000: 254, 1023: 255}
    for rel, bucket in spots.items():
        got = text_relative_buckets(torch.tensor([rel]), torch.tensor([0]), 256, 1024)
        assert int(got) == bucket + 255
        got = text_relative_buckets(torch.tensor([0]), torch.tensor([rel]), 256, 1024)
        assert int(got) == -bucket + 255


def test_image_relative_buckets_follow_the_2d_formula():
    ids = torch.tensor([1, 2, 1 + 42, 1 + 5 * 42 + 7])
    got = image_relative_buckets(ids, ids, 42)
    assert int(got[0, 0]) == 41 * 83 + 41
    assert int(got[3, 0]) == (5 + 41) * 83 + (7 + 41)
    assert int(got[0, 3]) == (-5 + 41) * 83 + (-7 + 41)
    table = image_bucket_table(42)
    assert table.shape == (1765, 1765)
    assert int(table[0, 5]) == 6889 and int(table[5, 0]) == 6890 and int(table[0, 0]) == 6891


def reference_beam_search(model, ids, images, beam, max_len_b, min_len=1, no_repeat=0, lenpen=1.0):
    """fairseq's rules, written plainly: full recomputation each step, one sentence at a time, no cache."""
    config = model.config
    bos, eos, pad = config.decoder_start_token_id, config.eos_token_id, config.pad_token_id
    hypotheses = [([bos], 0.0)]
    finished = []
    for step in range(max_len_b + 1):
        prefixes = torch.tensor([tokens for tokens, _ in hypotheses])
        count = len(hypotheses)
        with torch.no_grad():
            logits = model(
                input_ids=ids.expand(count, -1),
                patch_images=images.expand(count, -1, -1, -1),
                decoder_input_ids=prefixes,
                use_cache=False,
            ).logits[:, -1]
        lprobs = torch.log_softmax(logits.float(), dim=-1)
        if step < min_len:
            lprobs[:, eos] = float("-inf")
        lprobs[:, pad] = float("-inf")
        if step >= max_len_b:
            keep = lprobs[:, eos].clone()
            lprobs[:] = float("-inf")
            lprobs[:, eos] = keep
        for row, (tokens, _) in enumerate(hypotheses):
            if no_repeat and len(tokens) >= no_repeat:
                suffix = tokens[len(tokens) - no_repeat + 1 :]
                for start in range(len(tokens) - no_repeat + 1):
                    if tokens[start : start + no_repeat - 1] == suffix:
                        lprobs[row, tokens[start + no_repeat - 1]] = float("-inf")
        totals = lprobs + torch.tensor([score for _, score in hypotheses])[:, None]
        values, flat = totals.flatten().topk(2 * beam)
        candidates = [(float(v), int(i) // totals.shape[1], int(i) % totals.shape[1]) for v, i in zip(values, flat)]
        for _rank, (score, row, token) in enumerate(candidates[:beam]):
            if token == eos and score != float("-inf") and len(finished) < beam:
                finished.append((hypotheses[row][0][1:] + [eos], score / (step + 1) ** lenpen))
        if len(finished) >= beam or step == max_len_b:
            break
        survivors = [(score, row, token) for score, row, token in candidates if token != eos][:beam]
        hypotheses = [(hypotheses[row][0] + [token], score) for score, row, token in survivors]
    return sorted(finished, key=lambda item: item[1], reverse=True)


@pytest.mark.parametrize(
    "seed,beam,max_new,no_repeat,lenpen", [(0, 5, 9, 3, 1.0), (1, 3, 6, 0, 1.0), (2, 4, 8, 2, 0.5)]
)
def test_generate_matches_a_plain_reference_beam_loop(model, seed, beam, max_new, no_repeat, lenpen):
    ids, images = make_inputs(seed=seed, batch=2)
    out = model.generate(
        input_ids=ids,
        patch_images=images,
        num_beams=beam,
        max_new_tokens=max_new,
        no_repeat_ngram_size=no_repeat,
        length_penalty=lenpen,
        num_return_sequences=beam,
        return_dict_in_generate=True,
    )
    for row in range(2):
        expected = reference_beam_search(
            model, ids[row : row + 1], images[row : row + 1], beam, max_new - 1, no_repeat=no_repeat, lenpen=lenpen
        )
        for rank, (tokens, score) in enumerate(expected):
            got = out.sequences[row * beam + rank]
            got = got[1 : 1 + len(tokens)].tolist()
            assert got == tokens, f"row {row} rank {rank}"
            assert abs(float(out.sequences_scores[row * beam + rank]) - score) < 1e-4


def test_forced_eos_at_max_length_keeps_its_real_log_probability(model):
    """Hypotheses cut at the length limit are ranked with EOS's real log-prob, as in fairseq."""
    ids, images = make_inputs(seed=7, batch=1)
    out = model.generate(
        input_ids=ids,
        patch_images=images,
        num_beams=5,
        max_new_tokens=3,
        num_return_sequences=5,
        return_dict_in_generate=True,
    )
    expected = reference_beam_search(model, ids, images, 5, 2)
    assert [t for t, _ in expected] == [row[1 : 1 + len(t)].tolist() for row, (t, _) in zip(out.sequences, expected)]
    assert all(score < 0 for score in out.sequences_scores.tolist())


def test_padded_prompts_give_the_same_outputs_as_each_row_alone(model):
    generator = torch.Generator().manual_seed(11)
    lengths = [7, 4, 5]
    images = torch.randn(3, 3, 64, 64, generator=generator)
    ids = torch.full((3, max(lengths)), model.config.pad_token_id)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(4, VOCAB, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = 0, 2
    mask = ids.ne(model.config.pad_token_id).long()
    settings = dict(num_beams=4, max_new_tokens=7, no_repeat_ngram_size=3, num_return_sequences=2)
    batched = model.generate(input_ids=ids, attention_mask=mask, patch_images=images, **settings)
    for row, length in enumerate(lengths):
        alone = model.generate(input_ids=ids[row : row + 1, :length], patch_images=images[row : row + 1], **settings)
        for rank in range(2):
            mine = batched[row * 2 + rank]
            theirs = alone[rank]
            width = min(len(mine), len(theirs))
            assert mine[:width].tolist() == theirs[:width].tolist()
            assert bool((mine[width:] == model.config.pad_token_id).all())
            assert bool((theirs[width:] == model.config.pad_token_id).all())


def test_official_generation_defaults_replace_transformers_defaults(model):
    config = model.generation_config
    assert config.num_beams == 5 and config.max_new_tokens == 201 and config.min_new_tokens == 1
    from ofa_core.model.generation_config import official_generation_config

    muge = official_generation_config("caption-zh")
    assert (muge.num_beams, muge.max_new_tokens, muge.no_repeat_ngram_size) == (8, 129, 3)
    coco = official_generation_config("caption")
    assert (coco.num_beams, coco.max_new_tokens, coco.no_repeat_ngram_size) == (5, 17, 3)


def test_min_new_tokens_bans_eos_and_max_new_tokens_bounds_length(model):
    ids, images = make_inputs(seed=8, batch=2)
    out = model.generate(input_ids=ids, patch_images=images, num_beams=3, max_new_tokens=4, min_new_tokens=3)
    for row in out.tolist():
        body = row[1:]
        eos_at = body.index(2)
        assert 3 <= eos_at <= 3  # min_len 3 tokens, then EOS at the latest after max_len_b = 3 tokens


def test_sampling_goes_through_transformers_generate_with_the_cache(model):
    ids, images = make_inputs(seed=9, batch=2)
    torch.manual_seed(0)
    out = model.generate(input_ids=ids, patch_images=images, do_sample=True, num_beams=1, max_new_tokens=5)
    assert out.shape[0] == 2 and out.shape[1] <= 6 and bool((out[:, 0] == 0).all())


def test_fast_mode_quantizes_the_decoder_and_still_generates(model):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    from ofa_core.model.quantize import quantize_for_cpu

    fast = quantize_for_cpu(model)
    assert isinstance(fast.lm_head, DynamicInt8Linear)
    assert isinstance(fast.model.decoder.layers[0].fc1, DynamicInt8Linear)
    assert not isinstance(fast.model.encoder.layers[0].fc1, DynamicInt8Linear)
    assert not isinstance(model.lm_head, DynamicInt8Linear)
    ids, images = make_inputs(seed=12)
    exact = model.generate(input_ids=ids, patch_images=images, num_beams=3, max_new_tokens=6)
    quick = fast.generate(input_ids=ids, patch_images=images, num_beams=3, max_new_tokens=6)
    assert quick.shape[0] == exact.shape[0]
    agreement = (quick[:, :3] == exact[:, :3]).float().mean()
    assert agreement > 0.5


def test_transformers_search_is_available_on_request(model):
    ids, images = make_inputs(seed=13)
    out = model.generate(input_ids=ids, patch_images=images, num_beams=3, max_new_tokens=5, search="transformers")
    assert out.shape[0] == 2 and bool((out[:, 0] == 0).all())
    with pytest.raises(ValueError, match="search must be"):
        model.generate(input_ids=ids, patch_images=images, search="greedy-ish")
