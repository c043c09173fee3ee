"""Closed-set decoding and training: ranking every answer, trie-constrained beams, the restricted loss."""

from __future__ import annotations

import math

import pytest
import torch

from ofa_core import OFAError
from ofa_core.generation.closed_set import ClosedSetDecoder
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.search import special_token_ids
from ofa_core.plugin import ClosedSet
from ofa_core.testing import fake_image, tiny_model, tiny_processor
from ofa_core.trainer.losses import label_smoothed_cross_entropy

ANSWERS = ("red", "rose", "blue", "猫", "一只狗", "ok")


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


def model_for(processor, seed: int):
    return tiny_model(seed, vocab_size=len(processor.tokenizer), code_dict_size=16)


def inputs_for(processor, count: int = 3):
    return processor(text=["图片中有什么?"] * count, images=[fake_image(seed) for seed in range(count)])


def test_rank_scores_are_trie_masked_log_probabilities(processor):
    """Single-token answers: the score is the first step's log-softmax over the answers' tokens (EOS then has p=1)."""
    tokenizer = processor.tokenizer
    answers = ("猫", "狗", "车")
    decoder = ClosedSetDecoder(ClosedSet(answers), tokenizer)
    model = model_for(processor, 1)
    inputs = inputs_for(processor)
    encoder_outputs = model.get_encoder()(**inputs)
    scores = decoder.score(model, encoder_outputs)
    logits = model(**inputs, decoder_input_ids=torch.full((3, 1), tokenizer.bos_token_id)).logits[:, 0]
    ids = [tokenizer.convert_tokens_to_ids(answer) for answer in answers]
    expected = torch.log_softmax(logits[:, ids], dim=-1)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)


def test_rank_and_exhaustive_beam_agree_on_random_models(processor):
    """With beams >= answers and no length normalisation, beam search over the trie is exhaustive."""
    for seed in range(4):
        model = model_for(processor, seed)
        inputs = inputs_for(processor)
        config = official_generation_config("default", **special_token_ids(model.config))
        config.update(num_beams=len(ANSWERS), length_penalty=0.0, no_repeat_ngram_size=0, max_new_tokens=8)
        ranked = ClosedSetDecoder(ClosedSet(ANSWERS, top_k=3), processor.tokenizer).decode(
            model, inputs, config, processor.tokenizer
        )
        beamed = ClosedSetDecoder(ClosedSet(ANSWERS, inference="beam"), processor.tokenizer).decode(
            model, inputs, config, processor.tokenizer
        )
        assert [d.text for d in ranked] == [d.text for d in beamed], seed
        for decoded in ranked:
            assert decoded.text == decoded.ranking[0][0]
            assert [score for _, score in decoded.ranking] == sorted(
                (score for _, score in decoded.ranking), reverse=True
            )
            assert len(decoded.ranking) == 3 and all(answer in ANSWERS for answer, _ in decoded.ranking)


def test_beam_answers_are_always_in_the_set_even_with_a_short_length_budget(processor):
    model = model_for(processor, 2)
    config = official_generation_config("default", **special_token_ids(model.config))
    config.update(num_beams=2, max_new_tokens=1)  # shorter than "一只狗" + EOS: the decoder extends it
    decoded = ClosedSetDecoder(ClosedSet(ANSWERS, inference="beam"), processor.tokenizer).decode(
        model, inputs_for(processor, 4), config, processor.tokenizer
    )
    assert all(d.text in ANSWERS for d in decoded)


def test_answers_that_tokenize_alike_or_to_nothing_are_refused(processor):
    with pytest.raises(OFAError, match="tokenize identically"):
        ClosedSetDecoder(ClosedSet(("red", "RED")), processor.tokenizer)
    with pytest.raises(ValueError, match="duplicates"):
        ClosedSet(("red", "red"))


def test_labels_of_characters_the_vocabulary_lacks_are_explained(processor):
    """七 and 三 are not in the tiny vocabulary: both become [UNK], and the message says so in the recipe's words."""
    message = (
        "closed set: labels '七' and '三' both become [UNK]: this model's vocabulary lacks 七, 三; "
        "use labels written with characters it knows, or a model whose vocabulary has them"
    )
    with pytest.raises(OFAError) as raised:
        ClosedSetDecoder(ClosedSet(("猫", "七", "三"), noun="labels"), processor.tokenizer)
    assert str(raised.value) == message
    with pytest.raises(
        OFAError,
        match=r"^closed set: answers '一七' and '一三' both become '一 \[UNK\]': .* lacks 七, 三; use answers ",
    ):
        ClosedSetDecoder(ClosedSet(("一七", "一三")), processor.tokenizer)
    with pytest.raises(OFAError, match="^closed set: labels 'red' and 'RED' tokenize identically; keep one of them$"):
        ClosedSetDecoder(ClosedSet(("red", "RED"), noun="labels"), processor.tokenizer)


def test_classification_names_its_answers_labels(processor):
    from ofa_tasks.classification.labels import ClassificationOptions
    from ofa_tasks.classification.plugin import closed_set

    built = closed_set(ClassificationOptions(labels=("猫", "七", "三")))
    assert built.noun == "labels" and built.answers == ("猫", "七", "三")
    with pytest.raises(OFAError, match="^closed set: labels '七' and '三' both become \\[UNK\\]"):
        ClosedSetDecoder(built, processor.tokenizer)
    assert ClosedSet(("a", "b"), "beam", 2).noun == "answers"  # positional fields unchanged


def test_constraint_mask_allows_trie_children_and_leaves_outsiders_free(processor):
    tokenizer = processor.tokenizer
    decoder = ClosedSetDecoder(ClosedSet(("red", "rose", "blue")), tokenizer)
    ids = {piece: tokenizer.convert_tokens_to_ids(piece) for piece in ("r", "##e", "##d", "##o", "b", "x")}
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    inputs = torch.tensor([[bos, ids["r"], ids["##e"], ids["##d"]], [bos, ids["x"], 1, 1]])
    labels = torch.tensor([[ids["r"], ids["##e"], ids["##d"], eos], [ids["x"], eos, -100, -100]])
    mask = decoder.constraint_mask(inputs, labels)
    assert set(mask[0, 0].nonzero().flatten().tolist()) == {ids["r"], ids["b"]}
    assert set(mask[0, 1].nonzero().flatten().tolist()) == {ids["##e"], ids["##o"]}
    assert mask[0, 3].nonzero().flatten().tolist() == [eos]
    assert mask[1].all(), "an answer outside the set trains unconstrained instead of getting an impossible target"


def test_restricted_loss_smooths_over_allowed_tokens_only():
    logits = torch.tensor([[[2.0, 1.0, 0.5, -1.0, 3.0]]], requires_grad=True)
    labels = torch.tensor([[0]])
    mask = torch.tensor([[[True, True, True, False, False]]])
    epsilon = 0.1
    out = label_smoothed_cross_entropy(logits, labels, epsilon, mask)
    allowed = torch.log_softmax(torch.tensor([2.0, 1.0, 0.5]), dim=0)
    eps_i = epsilon / 2
    expected = (1 - epsilon - eps_i) * -allowed[0] + eps_i * -allowed.sum()
    assert float(out.loss_sum.detach()) == pytest.approx(float(expected), rel=1e-6)
    out.loss_sum.backward()
    assert logits.grad[0, 0, 3:].abs().sum() == 0, "masked logits get no gradient"
    plain = label_smoothed_cross_entropy(logits, labels, epsilon)
    assert math.isfinite(float(plain.loss_sum.detach())) and float(plain.loss_sum.detach()) != pytest.approx(
        float(expected)
    )


def test_scores_do_not_depend_on_how_many_answers_share_a_decoder_pass(processor):
    model = model_for(processor, 3)
    encoder_outputs = model.get_encoder()(**inputs_for(processor, 2))
    one_by_one = ClosedSetDecoder(ClosedSet(ANSWERS), processor.tokenizer, max_rows=1).score(model, encoder_outputs)
    all_at_once = ClosedSetDecoder(ClosedSet(ANSWERS), processor.tokenizer).score(model, encoder_outputs)
    torch.testing.assert_close(one_by_one, all_at_once, rtol=1e-5, atol=1e-5)
    assert one_by_one.shape == (2, len(ANSWERS)) and torch.isfinite(one_by_one).all()
