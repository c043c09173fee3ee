"""Decoding and training inside a `ClosedSet` of answers (class labels, a VQA answer list).

Two ways to pick an answer, as OFA has them:
- rank: teacher-force every answer after the encoder ran once, with the logits of each step
  masked to the trie's allowed tokens, and sum the log-probabilities of its tokens and EOS
  (unnormalised). The argmax is the prediction; the sorted scores give top-k.
- beam: beam search whose every step is restricted to the trie (`prefix_allowed_tokens_fn`).

`constraint_mask` gives the per-position allowed tokens for training (OFA's constraint masks).
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
import torch

from ofa_core.generation.answer_tokens import answer_ids
from ofa_core.generation.trie import CandidateTrie
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.modeling.beam_search import PROCESSOR_INPUTS
from ofa_core.plugin import ClosedSet


def source_inputs(inputs: dict) -> dict:
    """What `generate()` takes from a processor batch beside `input_ids`: its attention mask, patch images and
    patch masks, None where the batch has none."""
    return {name: inputs.get(name) for name in PROCESSOR_INPUTS}


@attrs.frozen
class Decoded:
    """One example's answer and, when the closed set asks for top-k, its best answers with their log-probabilities."""

    text: str
    ranking: tuple[tuple[str, float], ...] = ()


class ClosedSetDecoder:
    """A `ClosedSet` tokenized once: its trie, candidate tensors and the per-step masks scoring needs."""

    def __init__(self, closed_set: ClosedSet, tokenizer: Any, max_rows: int = 256) -> None:
        self.closed_set = closed_set
        self.answers = closed_set.answers
        self.bos, self.eos, self.pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)
        sequences = answer_ids(closed_set, tokenizer)
        self.by_tokens = dict(zip(sequences, self.answers))
        self.trie = CandidateTrie(sequences, self.bos, self.eos)
        self.max_rows = max_rows
        self.max_length = max(len(ids) for ids in sequences) + 1  # answer tokens + EOS
        # Decoder inputs `[bos] + ids` and targets `ids + [eos]` (-100 padded), answers sorted by
        # length so that a slice pads little. Trie masks are built per slice: all of them at once
        # would be answers x length x vocabulary booleans.
        order = sorted(range(len(sequences)), key=lambda index: len(sequences[index]))
        self.order = torch.tensor(order)
        self.inputs = torch.full((len(order), self.max_length), self.pad, dtype=torch.long)
        self.targets = torch.full((len(order), self.max_length), IGNORE_INDEX, dtype=torch.long)
        for row, index in enumerate(order):
            ids = sequences[index]
            self.inputs[row, : len(ids) + 1] = torch.tensor((self.bos, *ids))
            self.targets[row, : len(ids) + 1] = torch.tensor((*ids, self.eos))

    def constraint_mask(self, decoder_input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[B, T, V] bool: the tokens the trie allows at each answer position.

        A row's answer starts at its first label that is not ignored (after its decoder prompt, if any): there
        the trie's root children are allowed, as after BOS. A position whose label is ignored, or whose prefix or
        label has left the trie (an answer outside the set), is left unconstrained rather than given an
        impossible target.
        """
        rows, length = labels.shape
        mask = torch.ones(rows, length, self.vocab_size, dtype=torch.bool)
        prefixes, labels_list = decoder_input_ids.tolist(), labels.tolist()
        for row in range(rows):
            start = next((p for p, label in enumerate(labels_list[row]) if label != IGNORE_INDEX), length)
            node: dict | None = self.trie.root.get(self.bos)
            for position in range(start, length):
                if position > start:
                    node = node.get(prefixes[row][position]) if node is not None else None
                label = labels_list[row][position]
                if node is None or label == IGNORE_INDEX or label not in node:
                    continue
                mask[row, position] = False
                mask[row, position, list(node)] = True
        return mask.to(labels.device)

    def score(self, model: Any, encoder_outputs: Any, prompts: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C] summed log-probabilities of every answer (tokens + EOS) under trie-masked softmaxes.

        With `prompts` ([B, P] decoder prompts, right-padded with pad) each answer follows its row's prompt, as
        OFA's all-candidate evaluation does; only the answer's positions are scored. Each decoder pass covers at
        most `max_rows` (image, answer) pairs, bounding the rows x length x vocabulary logits. `model` is read
        through its `search_backend()` (PyTorch or exported graphs).
        """
        backend = model.search_backend()
        batch = encoder_outputs.last_hidden_state.shape[0]
        device = encoder_outputs.last_hidden_state.device
        prompt_rows = (
            [[] for _ in range(batch)]
            if prompts is None
            else [[token for token in row if token != self.pad] for row in prompts.tolist()]
        )
        offsets = torch.tensor([len(row) for row in prompt_rows], device=device)
        per_pass = max(1, self.max_rows // batch)
        scores = torch.empty(batch, len(self.answers), device=device)
        for start in range(0, len(self.answers), per_pass):
            targets = self.targets[start : start + per_pass]
            length = int(targets.ne(IGNORE_INDEX).sum(1).max())
            answers, targets = self.inputs[start : start + per_pass, :length], targets[:, :length]
            mask = self.constraint_mask(answers, targets).to(device)
            count = answers.shape[0]
            inputs = self._after_prompts(prompt_rows, answers).to(device)
            # The answer's k-th token is predicted at position prompt length + k of its row.
            positions = (offsets.repeat_interleave(count)[:, None] + torch.arange(length, device=device)).clamp(
                max=inputs.shape[1] - 1
            )
            logits = backend.answer_logits(inputs, encoder_outputs, count, positions)
            logits = logits.float().view(batch, count, length, -1).masked_fill(~mask, float("-inf"))
            lprobs = torch.log_softmax(logits, dim=-1)
            targets = targets.to(device)
            picked = lprobs.gather(-1, targets.clamp(min=0)[None, :, :, None].expand(batch, -1, -1, 1)).squeeze(-1)
            scores[:, self.order[start : start + count].to(device)] = picked.masked_fill(
                targets.eq(IGNORE_INDEX), 0.0
            ).sum(-1)
        return scores

    def _after_prompts(self, prompt_rows: list[list[int]], answers: torch.Tensor) -> torch.Tensor:
        """[B * C, L] decoder inputs: BOS, the row's prompt, then the answer (answers' BOS dropped), right-padded."""
        if not any(prompt_rows):
            return answers.repeat(len(prompt_rows), 1)
        width = max(len(row) for row in prompt_rows) + answers.shape[1]
        out = torch.full((len(prompt_rows) * answers.shape[0], width), self.pad, dtype=torch.long)
        for row, prompt in enumerate(prompt_rows):
            block = out[row * answers.shape[0] : (row + 1) * answers.shape[0]]
            block[:, 0] = self.bos
            block[:, 1 : 1 + len(prompt)] = torch.tensor(prompt, dtype=torch.long)
            block[:, 1 + len(prompt) : len(prompt) + answers.shape[1]] = answers[:, 1:]
        return out

    def _answer_of(self, tokens: list[int], tokenizer: Any) -> str:
        ids = [token for token in tokens if token not in (self.bos, self.pad)]
        if ids and ids[-1] == self.eos:
            ids = ids[:-1]
        return self.by_tokens.get(tuple(ids)) or tokenizer.decode(ids, skip_special_tokens=True).strip()

    @torch.no_grad()
    def decode(
        self, model: Any, inputs: dict, generation_config: Any, tokenizer: Any, rank_all: bool = False
    ) -> list[Decoded]:
        """Answers for a batch of processor inputs (`input_ids`, `attention_mask`, `patch_images`, `patch_masks`,
        optionally `decoder_prompts`); `ranking` holds the top_k answers, or with `rank_all` every answer."""
        encoder_outputs = model.search_backend().encode(inputs["input_ids"], **source_inputs(inputs))
        prompts = inputs.get("decoder_prompts")
        closed_set, rankings = self.closed_set, None
        if closed_set.inference == "rank" or closed_set.top_k > 1 or rank_all:
            scores = self.score(model, encoder_outputs, prompts)
            top = scores.topk(len(self.answers) if rank_all else min(closed_set.top_k, len(self.answers)), dim=1)
            rankings = [
                tuple((self.answers[i].strip(), float(s)) for i, s in zip(idx.tolist(), val.tolist()))
                for idx, val in zip(top.indices, top.values)
            ]
        if closed_set.inference == "rank":
            texts = [ranking[0][0] for ranking in rankings]
        else:
            config = copy.deepcopy(generation_config)
            # every answer fits after the longest prompt; beams left without one stop here
            config.max_new_tokens = self.max_length + (prompts.shape[1] if prompts is not None else 0)
            config.num_return_sequences = 1
            sequences = model.generate(
                inputs["input_ids"],
                **source_inputs(inputs),
                encoder_outputs=encoder_outputs,
                generation_config=config,
                prefix_allowed_tokens_fn=self.trie,
                decoder_prompt_ids=prompts,
            )
            texts = [self._answer_of(row, tokenizer) for row in after_prompts(sequences, prompts, self.pad)]
        if closed_set.top_k == 1 and not rank_all:
            return [Decoded(text) for text in texts]
        return [Decoded(text, ranking) for text, ranking in zip(texts, rankings)]


def after_prompts(sequences: torch.Tensor, prompts: torch.Tensor | None, pad: int) -> list[list[int]]:
    """Each generated row without its start token and its decoder prompt (what the answer is)."""
    rows = sequences.tolist()
    if prompts is None:
        return [row[1:] for row in rows]
    lengths = prompts.ne(pad).sum(1).tolist()
    return [row[1 + length :] for row, length in zip(rows, lengths)]


class AllowedTokens:
    """`prefix_allowed_tokens_fn` of a task's `allowed_tokens`: the same token ids (plus EOS) at every step."""

    def __init__(self, ids: Any, eos: int) -> None:
        self.ids = sorted({int(index) for index in ids} | {eos})

    def __call__(self, batch_id: int, prefix: torch.Tensor) -> list[int]:
        return self.ids


def decode_batch(
    model: Any,
    inputs: dict,
    generation_config: Any,
    tokenizer: Any,
    closed_set: ClosedSetDecoder | None = None,
    allowed_tokens: AllowedTokens | None = None,
    rank_all: bool = False,
) -> list[Decoded]:
    """Stripped answers for a batch of processor inputs: inside `closed_set` when given (`rank_all`: every answer
    ranked), else from the search (restricted to `allowed_tokens` when given). `inputs["decoder_prompts"]`, when
    present, are forced first."""
    if closed_set is not None:
        return closed_set.decode(model, inputs, generation_config, tokenizer, rank_all)
    prompts = inputs.get("decoder_prompts")
    sequences = model.generate(
        inputs["input_ids"],
        **source_inputs(inputs),
        generation_config=generation_config,
        decoder_prompt_ids=prompts,
        prefix_allowed_tokens_fn=allowed_tokens,
    )
    rows = after_prompts(sequences, prompts, tokenizer.pad_token_id)
    return [Decoded(text.strip()) for text in tokenizer.batch_decode(rows, skip_special_tokens=True)]
