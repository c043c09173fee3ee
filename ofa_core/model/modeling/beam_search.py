"""Beam search that ranks and stops exactly like OFA's fairseq `SequenceGenerator`.

Why our own search: transformers' beam search scores a forced end-of-sentence token
as log-prob 0 and finishes sentences differently, so it can return fairseq's 2nd-5th
best hypothesis.  This search keeps fairseq's rules -- 2*beam candidates per step, a
hypothesis finalised when an EOS candidate ranks among the first `beam`, scores
normalised by length**lenpen, a sentence done once `beam` hypotheses are final -- and
adds the speed that matters on CPU: the encoder runs once per image, the beams of an
image share its cross-attention keys/values, position biases are computed once per
search, and finished sentences leave the batch.

The search reads the network through a `SearchBackend` (encode; start a decoder whose steps keep their own
cache; teacher-forced logits for ranking answers), so the same search and ranking run over the PyTorch
model (`TorchBackend`) or over exported graphs in onnxruntime (`ofa_core.exported`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.model.search import SearchSettings

AllowedTokensFn = Callable[[int, torch.Tensor], list[int]]


class DecoderSteps(Protocol):
    """One search's decoder: `step` feeds each row's newest token and returns `[rows, V]` logits."""

    def step(self, new_tokens: torch.Tensor, step: int) -> torch.Tensor: ...

    def reorder(self, rows: torch.Tensor, kept_sentences: torch.Tensor | None) -> None: ...


class SearchBackend(Protocol):
    """What the search and answer ranking need of a network; `config` carries the special token ids and
    `max_position_embeddings`. Encoder outputs are opaque to the search except `last_hidden_state` (rows, device)."""

    config: Any

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        patch_images: torch.Tensor | None,
        patch_masks: torch.Tensor | None,
    ) -> Any: ...

    def start(self, encoder_outputs: Any, max_len: int) -> DecoderSteps: ...

    def answer_logits(
        self, decoder_input_ids: torch.Tensor, encoder_outputs: Any, per_image: int, positions: torch.Tensor
    ) -> torch.Tensor:
        """`[R, P, V]` logits at `positions` (`[R, P]`) of teacher-forced `decoder_input_ids` (`[R, L]`), whose
        rows come `per_image` at a time for each encoder row."""
        ...


class TorchBackend:
    """`SearchBackend` over an `OFAForConditionalGeneration`."""

    def __init__(self, model) -> None:
        self.model = model
        self.config = model.config

    def encode(self, input_ids, attention_mask, patch_images, patch_masks) -> OFAEncoderOutput:
        return self.model.get_encoder()(
            input_ids, attention_mask=attention_mask, patch_images=patch_images, patch_masks=patch_masks
        )

    def start(self, encoder_outputs: OFAEncoderOutput, max_len: int) -> _DecoderState:
        return _DecoderState(self.model, encoder_outputs, max_len)

    def answer_logits(self, decoder_input_ids, encoder_outputs, per_image, positions) -> torch.Tensor:
        index = torch.arange(
            encoder_outputs.last_hidden_state.shape[0], device=decoder_input_ids.device
        ).repeat_interleave(per_image)
        selected = OFAEncoderOutput(
            last_hidden_state=encoder_outputs.last_hidden_state.index_select(0, index),
            padding_mask=encoder_outputs.padding_mask.index_select(0, index),
            position_embeddings=encoder_outputs.position_embeddings.index_select(0, index),
        )
        hidden = self.model.model(
            decoder_input_ids=decoder_input_ids, encoder_outputs=selected, use_cache=False
        ).last_hidden_state
        hidden = hidden.gather(1, positions[:, :, None].expand(-1, -1, hidden.shape[-1]))
        return self.model.lm_head(hidden)


@dataclass
class Hypothesis:
    tokens: torch.Tensor  # generated ids, EOS last, no start token
    score: float
    positional_scores: torch.Tensor


def banned_ngram_tokens(tokens: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, token) pairs that would repeat an n-gram already present in each row of `tokens`."""
    if n <= 0 or tokens.shape[1] < n:
        empty = tokens.new_empty(0)
        return empty, empty
    windows = tokens.unfold(1, n, 1)
    suffix = tokens[:, tokens.shape[1] - n + 1 :]
    hits = (windows[:, :, : n - 1] == suffix[:, None, :]).all(-1)
    rows, starts = hits.nonzero(as_tuple=True)
    return rows, windows[rows, starts, n - 1]


def project_to_vocabulary(lm_head: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Output logits for a few rows.

    `W @ h.T` reads the [V, D] weight in its stored order; on CPU this runs up to 3x faster
    than `F.linear` for the handful of rows a beam step has (same values up to fp32 rounding).
    """
    if type(lm_head) is torch.nn.Linear and lm_head.bias is None and hidden.dim() == 2:
        return torch.mm(lm_head.weight, hidden.T).T
    return lm_head(hidden)


class BeamSearch:
    """One search over a batch; `run()` returns, per input, its hypotheses best first."""

    def __init__(
        self, backend: SearchBackend, settings: SearchSettings, allowed_tokens_fn: AllowedTokensFn | None = None
    ) -> None:
        config = backend.config
        self.backend = backend
        self.settings = settings
        self.allowed_tokens_fn = allowed_tokens_fn
        self.bos, self.eos = config.decoder_start_token_id, config.eos_token_id
        self.pad, self.unk = config.pad_token_id, config.unk_token_id

    def _max_len(self, input_ids: torch.Tensor) -> int:
        settings = self.settings
        limit = self.backend.config.max_position_embeddings - 1
        max_len = min(int(settings.max_len_a * input_ids.shape[1] + settings.max_len_b), limit)
        if settings.min_len > max_len:
            raise ValueError(f"min_len {settings.min_len} is larger than the maximum length {max_len}")
        return max_len

    def _log_probs(
        self,
        tokens: torch.Tensor,
        step: int,
        state: DecoderSteps,
        sentences: torch.Tensor,
        prompt_lengths: list[int] | None,
    ):
        logits = state.step(tokens[:, step : step + 1], step)
        if self.allowed_tokens_fn is not None:
            # OFA masks disallowed tokens before normalising, so the allowed ones share all the mass. A row still
            # in its decoder prompt is not restricted; after it, the function sees BOS + what follows the prompt.
            allowed = torch.zeros_like(logits, dtype=torch.bool)
            per_row = tokens.shape[0] // sentences.shape[0]
            for row in range(tokens.shape[0]):
                sentence = int(sentences[row // per_row])
                prompt = prompt_lengths[sentence] if prompt_lengths else 0
                if step < prompt:
                    allowed[row] = True
                    continue
                generated = torch.cat([tokens[row, :1], tokens[row, prompt + 1 : step + 1]])
                allowed[row, self.allowed_tokens_fn(sentence, generated)] = True
            logits = logits.masked_fill(~allowed, float("-inf"))
        return F.log_softmax(logits.float(), dim=-1)

    def _constrain(
        self, lprobs: torch.Tensor, tokens: torch.Tensor, step: int, max_len: int, forced: torch.Tensor | None
    ) -> torch.Tensor:
        """fairseq's per-step rules; `forced` ([rows], pad = free) are this step's prompt tokens."""
        settings = self.settings
        lprobs[lprobs != lprobs] = float("-inf")
        if forced is not None:
            # A prompt token keeps its own log-probability (it counts in the score) and excludes every other
            # token; rows whose prompt has ended are free. min_len does not apply while prompts are forced.
            rows = forced.ne(self.pad).nonzero(as_tuple=True)[0]
            columns = forced[rows]
            kept = lprobs[rows, columns]
            lprobs[rows] = float("-inf")
            lprobs[rows, columns] = kept
        elif step < settings.min_len:
            lprobs[:, self.eos] = float("-inf")
        lprobs[:, self.pad] = float("-inf")
        if settings.unk_penalty:
            lprobs[:, self.unk] -= settings.unk_penalty
        if step >= max_len:
            eos_column = lprobs[:, self.eos].clone()
            lprobs.fill_(float("-inf"))
            lprobs[:, self.eos] = eos_column
        rows, banned = banned_ngram_tokens(tokens[:, : step + 1], settings.no_repeat_ngram_size)
        lprobs[rows, banned] = float("-inf")
        return lprobs

    @torch.no_grad()
    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        patch_images: torch.Tensor | None = None,
        patch_masks: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        decoder_prompt_ids: torch.Tensor | None = None,
    ) -> list[list[Hypothesis]]:
        """Hypotheses per input, best first; `decoder_prompt_ids` ([B, P], right-padded with pad) are forced
        first, as fairseq's `prefix_tokens`: hypotheses hold them and scores include their log-probabilities."""
        beam = self.settings.beam
        batch = input_ids.shape[0]
        device = input_ids.device
        max_len = self._max_len(input_ids)
        prompt_lengths = None
        if decoder_prompt_ids is not None and decoder_prompt_ids.shape[1]:
            decoder_prompt_ids = decoder_prompt_ids.to(device)
            if bool(decoder_prompt_ids.eq(self.eos).any()):
                raise ValueError(
                    "a decoder prompt that holds EOS (prompt type 'src') is read by ranking answers, not by generation"
                )
            prompt_lengths = decoder_prompt_ids.ne(self.pad).sum(1).tolist()
        else:
            decoder_prompt_ids = None
        if encoder_outputs is None:
            encoder_outputs = self.backend.encode(input_ids, attention_mask, patch_images, patch_masks)
        state = self.backend.start(encoder_outputs, max_len)

        # One row per sentence at step 0 (all beams would be identical), `beam` rows afterwards.
        tokens = torch.full((batch, max_len + 2), self.pad, dtype=torch.long, device=device)
        tokens[:, 0] = self.bos
        scores = torch.zeros(batch, max_len + 1, device=device)
        sentences = torch.arange(batch, device=device)  # original index of each live sentence
        finalized: list[list[Hypothesis]] = [[] for _ in range(batch)]
        rows_per_sentence = 1

        for step in range(max_len + 1):
            live = sentences.shape[0]
            lprobs = self._log_probs(tokens, step, state, sentences, prompt_lengths)
            forced = None
            if decoder_prompt_ids is not None and step < decoder_prompt_ids.shape[1] and step < max_len:
                forced = decoder_prompt_ids[sentences, step].repeat_interleave(rows_per_sentence)
            lprobs = self._constrain(lprobs, tokens, step, max_len, forced)
            vocab = lprobs.shape[1]
            if step > 0:
                lprobs = lprobs + scores[:, step - 1 : step]
            flat = lprobs.view(live, rows_per_sentence * vocab)
            cand_scores, cand_index = flat.topk(min(2 * beam, flat.shape[1] - 1), dim=1)
            cand_tokens = cand_index % vocab
            cand_rows = cand_index // vocab + torch.arange(live, device=device)[:, None] * rows_per_sentence

            is_eos = cand_tokens.eq(self.eos) & cand_scores.ne(float("-inf"))
            finished = self._finalize(
                step, max_len, tokens, scores, cand_rows, cand_scores, is_eos, sentences, finalized
            )
            if step == max_len or bool(finished.all()):
                break
            keep = (~finished).nonzero(as_tuple=True)[0]

            # The first `beam` non-EOS candidates of every unfinished sentence live on.
            rank = is_eos.long() * is_eos.shape[1] + torch.arange(is_eos.shape[1], device=device)
            chosen = rank[keep].topk(beam, dim=1, largest=False).indices
            active_rows = cand_rows[keep].gather(1, chosen).view(-1)
            tokens = tokens.index_select(0, active_rows)
            scores = scores.index_select(0, active_rows)
            tokens[:, step + 1] = cand_tokens[keep].gather(1, chosen).view(-1)
            scores[:, step] = cand_scores[keep].gather(1, chosen).view(-1)
            state.reorder(active_rows, keep if keep.shape[0] < live else None)
            sentences = sentences[keep]
            rows_per_sentence = beam

        for hypotheses in finalized:
            hypotheses.sort(key=lambda hypothesis: hypothesis.score, reverse=True)
        return finalized

    def _finalize(
        self,
        step: int,
        max_len: int,
        tokens: torch.Tensor,
        scores: torch.Tensor,
        cand_rows: torch.Tensor,
        cand_scores: torch.Tensor,
        is_eos: torch.Tensor,
        sentences: torch.Tensor,
        finalized: list[list[Hypothesis]],
    ) -> torch.Tensor:
        """Record EOS candidates ranked among the first `beam`; return which live sentences are done."""
        beam = self.settings.beam
        eos_top = is_eos[:, :beam]
        live = sentences.shape[0]
        done = torch.zeros(live, dtype=torch.bool)
        if bool(eos_top.any()):
            live_index, column = eos_top.nonzero(as_tuple=True)
            rows = cand_rows[live_index, column]
            final_scores = cand_scores[live_index, column]
            hyp_tokens = tokens.index_select(0, rows)[:, 1 : step + 2].clone()
            hyp_tokens[:, step] = self.eos
            cumulative = scores.index_select(0, rows)[:, : step + 1].clone()
            cumulative[:, step] = final_scores
            positional = torch.cat([cumulative[:, :1], cumulative[:, 1:] - cumulative[:, :-1]], dim=1)
            if self.settings.normalize_scores:
                final_scores = final_scores / (step + 1) ** self.settings.lenpen
            for i, index in enumerate(live_index.tolist()):
                bucket = finalized[int(sentences[index])]
                if len(bucket) < beam:
                    bucket.append(Hypothesis(hyp_tokens[i], float(final_scores[i]), positional[i]))
        for index in range(live):
            done[index] = step == max_len or len(finalized[int(sentences[index])]) >= beam
        return done.to(tokens.device)


class _DecoderState:
    """Decoder-side state of one search over the PyTorch model: the cache, encoder rows and precomputed
    position biases."""

    def __init__(self, model, encoder_outputs: OFAEncoderOutput, max_len: int) -> None:
        self.decoder = model.model.decoder
        self.lm_head = model.lm_head
        self.hidden = encoder_outputs.last_hidden_state
        self.padding = encoder_outputs.padding_mask
        if self.padding is not None and not bool(self.padding.any()):
            self.padding = None
        self.positions = encoder_outputs.position_embeddings
        self.bias = self.decoder.position_bias(0, max_len + 1, self.positions)
        self.prompts = self.decoder.prompt_key_values()
        self.cache = EncoderDecoderCache(DynamicCache(), DynamicCache())

    def step(self, new_tokens: torch.Tensor, step: int) -> torch.Tensor:
        hidden, _ = self.decoder(
            new_tokens,
            self.hidden,
            self.padding,
            self.positions,
            cache=self.cache,
            position_bias=self.bias.rows(step, 1),
            prompts=self.prompts,
        )
        return project_to_vocabulary(self.lm_head, hidden[:, -1])

    def reorder(self, rows: torch.Tensor, kept_sentences: torch.Tensor | None) -> None:
        """Follow the surviving beams; drop finished sentences' encoder rows and cross keys/values."""
        self.cache.self_attention_cache.reorder_cache(rows)
        if kept_sentences is None:
            return
        self.cache.cross_attention_cache.reorder_cache(kept_sentences)
        self.hidden = self.hidden.index_select(0, kept_sentences)
        if self.padding is not None:
            self.padding = self.padding.index_select(0, kept_sentences)


PROCESSOR_INPUTS = ("attention_mask", "patch_images", "patch_masks")
"""What a processor batch gives the encoder beside `input_ids`."""
SOURCE_INPUTS = (*PROCESSOR_INPUTS, "encoder_outputs")
"""The `generate()` keyword arguments the search passes on to the encoder (or takes as its output)."""


def official_search(
    backend: SearchBackend,
    settings: SearchSettings,
    input_ids: torch.Tensor,
    allowed_tokens_fn: AllowedTokensFn | None = None,
    model_inputs: Mapping[str, Any] | None = None,
    decoder_prompt_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`[B * n, 1 + L]` ids (start token first, pad after EOS) and their scores, n = `num_return_sequences`: what
    `generate()` returns for either backend. `model_inputs` is `generate()`'s keyword arguments: the source's
    `attention_mask`, `patch_images`, `patch_masks`, or its `encoder_outputs`."""
    if settings.num_return_sequences > settings.beam:
        raise ValueError(
            f"num_return_sequences ({settings.num_return_sequences}) cannot exceed num_beams ({settings.beam})"
        )
    finalized = BeamSearch(backend, settings, allowed_tokens_fn).run(
        input_ids,
        **{name: (model_inputs or {}).get(name) for name in SOURCE_INPUTS},
        decoder_prompt_ids=decoder_prompt_ids,
    )
    return _pack(backend.config, finalized, settings.num_return_sequences, input_ids.device)


def _pack(
    config: Any, finalized: list[list[Hypothesis]], per_input: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hypotheses -> `[B * per_input, 1 + L]` ids and their scores.

    Under tight constraints a sentence can finish fewer hypotheses than asked for; its
    missing rows are an empty output (start, EOS) scored -inf, so the shape stays fixed.
    """
    eos = config.eos_token_id
    empty = Hypothesis(torch.tensor([eos], device=device), float("-inf"), torch.zeros(1, device=device))
    chosen = [(hypotheses[:per_input] + [empty] * per_input)[:per_input] for hypotheses in finalized]
    chosen = [hypothesis for row in chosen for hypothesis in row]
    width = 1 + max(len(hypothesis.tokens) for hypothesis in chosen)
    sequences = torch.full((len(chosen), width), config.pad_token_id, dtype=torch.long, device=device)
    sequences[:, 0] = config.decoder_start_token_id
    for row, hypothesis in enumerate(chosen):
        sequences[row, 1 : 1 + len(hypothesis.tokens)] = hypothesis.tokens
    scores = torch.tensor([hypothesis.score for hypothesis in chosen], device=device)
    return sequences, scores
