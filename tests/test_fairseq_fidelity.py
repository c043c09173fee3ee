"""Fidelity to the official fairseq implementation, against outputs it produced.

`tests/data/fairseq_golden_*.pt` hold outputs of the official OFA code (OFA-Sys/OFA main:
`OFAModel` and `models/sequence_generator.py`, fp32, CPU, apex off). They were computed on
the weights below -- `ofa_core.testing.tiny_model(0, preset, scale)` exported with
`python -m ofa_core convert to-fairseq` -- and on the inputs `make_inputs` rebuilds.
Official code is not needed to run this test; only its recorded outputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ofa_core.testing import tiny_model

DATA = Path(__file__).parent / "data"


def make_inputs(image_size: int):
    """The inputs the golden outputs were computed on: a batch of 3 with right-padded prompts."""
    generator = torch.Generator().manual_seed(7)
    ids = torch.full((3, 9), 1)
    for row, length in enumerate([9, 5, 7]):
        ids[row, :length] = torch.randint(4, 21000, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = 0, 2
    images = torch.randn(3, 3, image_size, image_size, generator=generator)
    decoder_ids = torch.randint(4, 21000, (3, 6), generator=generator)
    decoder_ids[:, 0] = 0
    return ids, images, decoder_ids


@pytest.fixture(scope="module", params=["tiny", "cnbase"])
def case(request):
    golden = torch.load(DATA / f"fairseq_golden_{request.param}.pt", weights_only=True)
    model = tiny_model(0, preset=golden["preset"], scale=golden["scale"])
    ids, images, decoder_ids = make_inputs(golden["image_size"])
    assert torch.equal(ids, golden["input_ids"]) and torch.equal(decoder_ids, golden["decoder_input_ids"])
    return model, golden, ids, images, decoder_ids


def test_encoder_and_logits_match_fairseq(case):
    model, golden, ids, images, decoder_ids = case
    with torch.no_grad():
        encoded = model.get_encoder()(ids, attention_mask=ids.ne(1).long(), patch_images=images)
        logits = model(
            input_ids=ids, attention_mask=ids.ne(1).long(), patch_images=images, decoder_input_ids=decoder_ids
        ).logits
    assert torch.equal(encoded.padding_mask, golden["encoder_padding_mask"])
    valid = ~golden["encoder_padding_mask"]
    channels = golden["encoder_out"].shape[-1]
    assert (encoded.last_hidden_state[..., :channels] - golden["encoder_out"])[valid].abs().max() <= 1e-4
    assert (logits[:, :, golden["logit_columns"]] - golden["logits"]).abs().max() <= 1e-4
    assert torch.equal(logits.argmax(-1).int(), golden["argmax"])


@pytest.mark.parametrize("search", ["caption", "muge", "short", "lenpen"])
def test_beam_search_returns_fairseqs_hypotheses(case, search):
    model, golden, ids, images, _ = case
    recorded = golden["search"][search]
    settings = recorded["settings"]
    beam = settings["beam_size"]
    out = model.generate(
        input_ids=ids,
        attention_mask=ids.ne(1).long(),
        patch_images=images,
        num_beams=beam,
        max_new_tokens=settings["max_len_b"] + 1,
        min_new_tokens=settings.get("min_len", 1),
        no_repeat_ngram_size=settings.get("no_repeat_ngram_size", 0),
        length_penalty=settings.get("len_penalty", 1.0),
        num_return_sequences=beam,
        return_dict_in_generate=True,
    )
    for row, hypotheses in enumerate(recorded["hypotheses"]):
        for rank, (tokens, score) in enumerate(hypotheses):
            index = row * beam + rank
            assert out.sequences[index, 1 : 1 + len(tokens)].tolist() == tokens, (row, rank)
            assert abs(float(out.sequences_scores[index]) - score) <= 1e-4
