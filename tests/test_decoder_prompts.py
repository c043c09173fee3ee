"""Decoder prompts (OFA's `--prompt-type`): encoding, forced prompts in beam search, ranking after the prompt."""

from __future__ import annotations

import pytest
import torch

from ofa_core.data.collate import Collator
from ofa_core.data.encode import RecordEncoder, RecordError
from ofa_core.generation.closed_set import ClosedSetDecoder, decode_batch
from ofa_core.generation.trie import CandidateTrie
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.search import special_token_ids
from ofa_core.plugin import ClosedSet, PromptTemplate
from ofa_core.testing import fake_image, tiny_model, tiny_processor
from ofa_core.trainer.losses import label_smoothed_cross_entropy

ANSWERS = ("红色", "蓝色", "一只狗", "猫", "是")


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


@pytest.fixture(scope="module")
def model(processor):
    return tiny_model(3, vocab_size=len(processor.tokenizer), code_dict_size=16)


def ids(processor, text: str) -> list[int]:
    return processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def template(prompt_type: str = "none", **extra) -> PromptTemplate:
    return PromptTemplate("t.zh", "zh", source="{question}", target="{answer}", prompt_type=prompt_type, **extra)


def test_prompt_types_lay_out_decoder_inputs_and_labels_as_ofa(processor):
    tok = processor.tokenizer
    record = {"id": 7, "question": "图片中有什么", "answer": "猫"}
    q, a = ids(processor, "图片中有什么"), ids(processor, "猫")
    bos, eos = tok.bos_token_id, tok.eos_token_id

    none = RecordEncoder(tok, template()).encode(record)
    assert none.decoder_input_ids == (bos, *a) and none.labels == (*a, eos) and none.decoder_prompt == ()

    prev = RecordEncoder(tok, template("prev_output")).encode(record)
    assert prev.source_ids == (bos, *q, eos)
    assert prev.decoder_input_ids == (bos, *q, *a)  # the source without its EOS, then the answer
    assert prev.labels == (*[IGNORE_INDEX] * len(q), *a, eos)
    assert prev.decoder_prompt == tuple(q)

    src = RecordEncoder(tok, template("src")).encode(record)
    assert src.decoder_input_ids == (bos, *q, eos, *a)  # the whole source, EOS included
    assert src.labels == (*[IGNORE_INDEX] * (len(q) + 1), *a, eos)

    custom = RecordEncoder(tok, template(decoder_prefix="答案")).encode(record)
    assert custom.decoder_prompt == tuple(ids(processor, "答案"))

    cut = RecordEncoder(tok, template("prev_output"), max_source_length=4).encode(record)
    assert cut.source_ids == (bos, *q[:2], eos) and cut.decoder_prompt == tuple(q[:2])


def test_a_template_cannot_have_both_a_prefix_and_a_prompt_type():
    with pytest.raises(ValueError, match="not both"):
        template("prev_output", decoder_prefix="x")


def test_loss_weight_comes_from_the_record_and_is_checked(processor):
    encoder = RecordEncoder(processor.tokenizer, template())
    assert encoder.encode({"question": "a", "answer": "b", "loss_weight": 0.3}).loss_weight == 0.3
    with pytest.raises(RecordError, match="loss_weight"):
        encoder.encode({"id": 1, "question": "a", "answer": "b", "loss_weight": "high"})


def test_collate_pads_prompts_and_carries_weights(processor):
    tok = processor.tokenizer
    encoder = RecordEncoder(tok, template("prev_output"))
    examples = [
        encoder.encode({"question": q, "answer": "猫", "loss_weight": w})
        for q, w in (("图片", 1.0), ("图片中有什么", 0.5))
    ]
    batch = Collator(tok.pad_token_id, 32)([([e], None, True) for e in examples])
    prompts = batch["decoder_prompts"].tolist()
    short, long = examples[0].decoder_prompt, examples[1].decoder_prompt
    assert prompts == [[*short, *[tok.pad_token_id] * (len(long) - len(short))], list(long)]
    assert batch["loss_weights"].tolist() == [1.0, 0.5]
    plain = Collator(tok.pad_token_id, 32)(
        [([RecordEncoder(tok, template()).encode({"question": "a", "answer": "b"})], None, True)]
    )
    assert "decoder_prompts" not in plain and "loss_weights" not in plain


def test_loss_weights_scale_each_rows_loss():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 11), torch.tensor([[1, 2, IGNORE_INDEX], [3, 4, 5]])
    full = [label_smoothed_cross_entropy(logits[i : i + 1], labels[i : i + 1], 0.1).loss_sum for i in range(2)]
    weighted = label_smoothed_cross_entropy(logits, labels, 0.1, weights=torch.tensor([0.5, 2.0])).loss_sum
    torch.testing.assert_close(weighted, 0.5 * full[0] + 2.0 * full[1])


def _inputs(processor, questions: list[str]):
    inputs = processor(text=questions, images=[fake_image(i) for i in range(len(questions))])
    return dict(inputs)


def _prompts(processor, questions: list[str]) -> torch.Tensor:
    rows = [ids(processor, q) for q in questions]
    width = max(len(r) for r in rows)
    return torch.tensor([r + [processor.tokenizer.pad_token_id] * (width - len(r)) for r in rows])


@torch.no_grad()
def _sequence_log_prob(model, inputs: dict, row: int, tokens: list[int], allowed=None, start: int = 0) -> float:
    """Teacher-forced sum of log p(token) over `tokens` (BOS first); from position `start` on, restricted to
    `allowed`."""
    single = {k: v[row : row + 1] for k, v in inputs.items()}
    logits = model(**single, decoder_input_ids=torch.tensor([tokens[:-1]])).logits[0].float()
    total = 0.0
    for position, token in enumerate(tokens[1:]):
        step = logits[position]
        if allowed is not None and position >= start:
            mask = torch.full_like(step, float("-inf"))
            mask[allowed(tokens[:1] + tokens[start + 1 : position + 1])] = 0.0
            step = step + mask
        total += float(torch.log_softmax(step, -1)[token])
    return total


def test_beam_search_forces_each_rows_prompt_and_scores_include_it(processor, model):
    questions = ["图片中有什么颜色", "狗"]
    inputs, prompts = _inputs(processor, questions), _prompts(processor, questions)
    config = official_generation_config("vqa", **special_token_ids(model.config))
    config.update(num_beams=3, max_new_tokens=14)
    out = model.generate(**inputs, generation_config=config, decoder_prompt_ids=prompts, return_dict_in_generate=True)
    pad, eos = processor.tokenizer.pad_token_id, processor.tokenizer.eos_token_id
    for row, question in enumerate(questions):
        tokens = [t for t in out.sequences[row].tolist() if t != pad]
        prompt = ids(processor, question)
        assert tokens[1 : 1 + len(prompt)] == prompt and tokens[-1] == eos
        # unnormalised score = log-probs of the prompt tokens + the generated ones
        assert out.sequences_scores[row].item() == pytest.approx(
            _sequence_log_prob(model, inputs, row, tokens), abs=1e-4
        )
        alone = model.generate(
            **{k: v[row : row + 1] for k, v in inputs.items()},
            generation_config=config,
            decoder_prompt_ids=_prompts(processor, [question]),
        )
        assert [t for t in alone[0].tolist() if t != pad] == tokens  # right-padded prompts do not change a row


def test_prompts_holding_eos_are_refused(processor, model):
    inputs = _inputs(processor, ["狗"])
    prompts = torch.tensor([[ids(processor, "狗")[0], processor.tokenizer.eos_token_id]])
    with pytest.raises(ValueError, match="ranking"):
        model.generate(**inputs, decoder_prompt_ids=prompts)


def test_open_ended_decoding_strips_the_prompt(processor, model):
    questions = ["图片中有什么颜色", "狗"]
    inputs = {**_inputs(processor, questions), "decoder_prompts": _prompts(processor, questions)}
    config = official_generation_config("vqa", **special_token_ids(model.config))
    config.update(num_beams=2, max_new_tokens=12)
    decoded = decode_batch(model, inputs, config, processor.tokenizer)
    sequences = model.generate(
        **{k: v for k, v in inputs.items() if k != "decoder_prompts"},
        generation_config=config,
        decoder_prompt_ids=inputs["decoder_prompts"],
    )
    for row, question in enumerate(questions):
        after = sequences[row].tolist()[1 + len(ids(processor, question)) :]
        assert decoded[row].text == processor.tokenizer.decode(after, skip_special_tokens=True).strip()


def test_ranking_scores_each_answer_after_its_rows_prompt(processor, model):
    questions = ["图片中有什么颜色", "狗"]
    inputs, prompts = _inputs(processor, questions), _prompts(processor, questions)
    decoder = ClosedSetDecoder(ClosedSet(ANSWERS, top_k=len(ANSWERS)), processor.tokenizer)
    encoder_outputs = model.get_encoder()(**inputs)
    scores = decoder.score(model, encoder_outputs, prompts)
    trie = CandidateTrie(
        [ids(processor, a) for a in ANSWERS], processor.tokenizer.bos_token_id, processor.tokenizer.eos_token_id
    )
    bos, eos = processor.tokenizer.bos_token_id, processor.tokenizer.eos_token_id
    for row, question in enumerate(questions):
        prompt = ids(processor, question)
        for column, answer in enumerate(ANSWERS):
            tokens = [bos, *prompt, *ids(processor, answer), eos]
            full = _sequence_log_prob(model, inputs, row, tokens, trie.allowed, start=len(prompt))
            prompt_part = _sequence_log_prob(model, inputs, row, [bos, *prompt])
            assert scores[row, column].item() == pytest.approx(full - prompt_part, abs=1e-4)
    no_prompt = decoder.score(model, encoder_outputs)
    assert not torch.allclose(no_prompt, scores)


def test_trie_beam_after_prompts_agrees_with_ranking(processor):
    questions = ["图片中有什么颜色", "狗", "这是什么"]
    for seed in range(3):
        model = tiny_model(seed, vocab_size=len(processor.tokenizer), code_dict_size=16)
        inputs = {**_inputs(processor, questions), "decoder_prompts": _prompts(processor, questions)}
        config = official_generation_config("vqa", **special_token_ids(model.config))
        config.update(num_beams=len(ANSWERS), no_repeat_ngram_size=0)
        ranked = ClosedSetDecoder(ClosedSet(ANSWERS), processor.tokenizer).decode(
            model, inputs, config, processor.tokenizer
        )
        beamed = ClosedSetDecoder(ClosedSet(ANSWERS, inference="beam"), processor.tokenizer).decode(
            model, inputs, config, processor.tokenizer
        )
        assert [d.text for d in beamed] == [d.text for d in ranked], seed
        assert all(d.text in ANSWERS for d in beamed)


def test_constraint_mask_starts_the_trie_after_the_prompt(processor):
    tok = processor.tokenizer
    decoder = ClosedSetDecoder(ClosedSet(ANSWERS, restrict_loss=True), tok)
    example = RecordEncoder(tok, template("prev_output")).encode({"question": "图片中有什么", "answer": "一只狗"})
    mask = decoder.constraint_mask(torch.tensor([example.decoder_input_ids]), torch.tensor([example.labels]))[0]
    prompt_length = len(example.decoder_prompt)
    assert bool(mask[:prompt_length].all())  # prompt positions: no target, no constraint
    first = set(mask[prompt_length].nonzero().flatten().tolist())
    assert first == {ids(processor, a)[0] for a in ANSWERS}
    answer = ids(processor, "一只狗")
    assert set(mask[prompt_length + 1].nonzero().flatten().tolist()) == {answer[1]}
    assert set(mask[prompt_length + len(answer)].nonzero().flatten().tolist()) == {tok.eos_token_id}


def test_a_recipe_sets_the_prompt_type(tmp_path):
    from ofa_core.recipe import load, resolve
    from ofa_core.registry import load_plugins

    registry = load_plugins().registry()
    for prompt_type in ("prev_output", "src"):
        path = tmp_path / f"{prompt_type}.json"
        path.write_text(
            '{"model": {"checkpoint": "."}, "task": {"name": "vqa", "lang": "en", "prompt_type": "%s"}}' % prompt_type
        )
        resolved = resolve(load(path), registry)
        assert resolved.prompt.prompt_type == prompt_type
        assert resolved.prompt.source == registry.prompts.get("vqa.en").source
