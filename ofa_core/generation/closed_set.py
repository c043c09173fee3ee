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

from ofa_core.model.errors import OFAError
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.generation.trie import CandidateTrie
from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.plugin.specs import ClosedSet



@attrs.frozen
class Decoded:
    """One example's answer and, when the closed set asks for top-k, its best answers with their log-probabilities."""

    text: str
    ranking: tuple[tuple[str, float], ...] = ()


def _select(encoder_outputs: OFAEncoderOutput, index: torch.Tensor) -> OFAEncoderOutput:
    return OFAEncoderOutput(last_hidden_state=encoder_outputs.last_hidden_state.index_select(0, index),
                            padding_mask=encoder_outputs.padding_mask.index_select(0, index),
                            position_embeddings=encoder_outputs.position_embeddings.index_select(0, index))


def _singular(noun: str) -> str:
    return noun[:-1] if noun.endswith("s") else noun


def _unknown_ids(tokenizer: Any) -> set[int]:
    """Ids the tokenizer gives text its vocabulary lacks: its unk token, and its model's own unknown piece
    (a WordPiece vocabulary's `[UNK]`, which OFA's Chinese tokenizer keeps apart from `<unk>`)."""
    ids = {tokenizer.unk_token_id}
    model_unk = getattr(getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None), "unk_token", None)
    if isinstance(model_unk, str):
        ids.add(tokenizer.convert_tokens_to_ids(model_unk))
    return {index for index in ids if isinstance(index, int)}


def _identical(noun: str, first: str, second: str, ids: tuple[int, ...], tokenizer: Any) -> str:
    """Why two answers of a closed set cannot be told apart: unknown characters when that is the cause."""
    unknown = _unknown_ids(tokenizer)
    if not unknown.intersection(ids):
        return f"closed set: {noun} {first!r} and {second!r} tokenize identically; keep one of them"
    lacking: list[str] = []
    for character in dict.fromkeys(first + second):
        if not character.isspace() and unknown.intersection(tokenizer(character, add_special_tokens=False)["input_ids"]):
            lacking.append(character)
    tokens = " ".join(tokenizer.convert_ids_to_tokens(list(ids)))
    tokens = tokens if len(ids) == 1 else repr(tokens)
    lacks = f"lacks {', '.join(lacking)}" if lacking else "lacks some of their characters"
    return (f"closed set: {noun} {first!r} and {second!r} both become {tokens}: this model's vocabulary {lacks}; "
            f"use {noun} written with characters it knows, or a model whose vocabulary has them")


class ClosedSetDecoder:
    """A `ClosedSet` tokenized once: its trie, candidate tensors and the per-step masks scoring needs."""

    def __init__(self, closed_set: ClosedSet, tokenizer: Any, max_rows: int = 256) -> None:
        self.closed_set = closed_set
        self.answers = closed_set.answers
        self.bos, self.eos, self.pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)
        sequences = [tuple(tokenizer(answer, add_special_tokens=False)["input_ids"]) for answer in self.answers]
        noun = closed_set.noun
        seen: dict[tuple[int, ...], str] = {}
        for answer, ids in zip(self.answers, sequences):
            if not ids:
                raise OFAError(f"closed set: {_singular(noun)} {answer!r} tokenizes to nothing; remove it from the {noun}")
            if ids in seen:
                raise OFAError(_identical(noun, seen[ids], answer, ids, tokenizer))
            seen[ids] = answer
        self.by_tokens = seen
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
        """[B, T, V] bool: the tokens the trie allows after each decoder prefix.

        A position whose label is ignored, or whose prefix or label has left the trie (an answer
        outside the set), is left unconstrained rather than given an impossible target.
        """
        rows, length = labels.shape
        mask = torch.ones(rows, length, self.vocab_size, dtype=torch.bool)
        prefixes, labels_list = decoder_input_ids.tolist(), labels.tolist()
        for row in range(rows):
            node: dict | None = self.trie.root
            for position in range(length):
                node = node.get(prefixes[row][position]) if node is not None else None
                label = labels_list[row][position]
                if node is None or label == IGNORE_INDEX or label not in node:
                    continue
                mask[row, position] = False
                mask[row, position, list(node)] = True
        return mask.to(labels.device)

    def score(self, model: Any, encoder_outputs: OFAEncoderOutput) -> torch.Tensor:
        """[B, C] summed log-probabilities of every answer (tokens + EOS) under trie-masked softmaxes.

        Each decoder pass covers at most `max_rows` (image, answer) pairs, bounding the
        rows x length x vocabulary logits for large label sets.
        """
        batch = encoder_outputs.last_hidden_state.shape[0]
        device = encoder_outputs.last_hidden_state.device
        per_pass = max(1, self.max_rows // batch)
        scores = torch.empty(batch, len(self.answers), device=device)
        for start in range(0, len(self.answers), per_pass):
            targets = self.targets[start:start + per_pass]
            length = int(targets.ne(IGNORE_INDEX).sum(1).max())
            inputs, targets = self.inputs[start:start + per_pass, :length], targets[:, :length]
            mask = self.constraint_mask(inputs, targets).to(device)
            count = inputs.shape[0]
            index = torch.arange(batch, device=device).repeat_interleave(count)
            logits = model(decoder_input_ids=inputs.to(device).repeat(batch, 1),
                           encoder_outputs=_select(encoder_outputs, index), use_cache=False).logits.float()
            logits = logits.view(batch, count, length, -1).masked_fill(~mask, float("-inf"))
            lprobs = torch.log_softmax(logits, dim=-1)
            targets = targets.to(device)
            picked = lprobs.gather(-1, targets.clamp(min=0)[None, :, :, None].expand(batch, -1, -1, 1)).squeeze(-1)
            scores[:, self.order[start:start + count].to(device)] = picked.masked_fill(targets.eq(IGNORE_INDEX), 0.0).sum(-1)
        return scores

    def _answer_of(self, tokens: list[int], tokenizer: Any) -> str:
        ids = [token for token in tokens if token not in (self.bos, self.pad)]
        if ids and ids[-1] == self.eos:
            ids = ids[:-1]
        return self.by_tokens.get(tuple(ids)) or tokenizer.decode(ids, skip_special_tokens=True).strip()

    @torch.no_grad()
    def decode(self, model: Any, inputs: dict, generation_config: Any, tokenizer: Any) -> list[Decoded]:
        """Answers for a batch of processor inputs (`input_ids`, `attention_mask`, `patch_images`, `patch_masks`)."""
        encoder_outputs = model.get_encoder()(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                                              patch_images=inputs.get("patch_images"), patch_masks=inputs.get("patch_masks"))
        closed_set, rankings = self.closed_set, None
        if closed_set.inference == "rank" or closed_set.top_k > 1:
            scores = self.score(model, encoder_outputs)
            top = scores.topk(min(closed_set.top_k, len(self.answers)), dim=1)
            rankings = [tuple((self.answers[i], float(s)) for i, s in zip(idx.tolist(), val.tolist()))
                        for idx, val in zip(top.indices, top.values)]
        if closed_set.inference == "rank":
            texts = [ranking[0][0] for ranking in rankings]
        else:
            config = copy.deepcopy(generation_config)
            config.max_new_tokens = self.max_length  # every answer fits; beams left without one stop here
            config.num_return_sequences = 1
            sequences = model.generate(inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                                       patch_images=inputs.get("patch_images"), patch_masks=inputs.get("patch_masks"),
                                       encoder_outputs=encoder_outputs, generation_config=config,
                                       prefix_allowed_tokens_fn=self.trie)
            texts = [self._answer_of(row, tokenizer) for row in sequences.tolist()]
        if closed_set.top_k == 1:
            return [Decoded(text) for text in texts]
        return [Decoded(text, ranking) for text, ranking in zip(texts, rankings)]


def decode_batch(model: Any, inputs: dict, generation_config: Any, tokenizer: Any,
                 closed_set: ClosedSetDecoder | None = None) -> list[Decoded]:
    """Stripped answers for a batch of processor inputs: inside `closed_set` when given, else from the search."""
    if closed_set is not None:
        return closed_set.decode(model, inputs, generation_config, tokenizer)
    sequences = model.generate(inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                               patch_images=inputs.get("patch_images"), patch_masks=inputs.get("patch_masks"),
                               generation_config=generation_config)
    return [Decoded(text.strip()) for text in tokenizer.batch_decode(sequences, skip_special_tokens=True)]
