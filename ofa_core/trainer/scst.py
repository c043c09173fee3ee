"""Self-critical sequence training (SCST) as a loss that drives the model itself (`drives_model`).

Per input (image and source text) of the batch, the official search produces `candidates` captions with the
model in eval mode and without a graph; a registered reward metric scores each against the input's
references; each candidate's reward minus the mean reward of the input's other candidates weighs its summed
token log-probabilities, re-scored with the model in training mode. As OFA's `scst_reward_criterion`, the loss
is `-(advantage x log p(token))` summed over candidate tokens (EOS included) and its sample size is that token
count, so the trainer's per-token normalisation is the official one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ofa_core._errors import OFAError
from ofa_core.generation.closed_set import source_inputs
from ofa_core.model.generation_config import official_generation_config
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.modeling.outputs import OFAEncoderOutput
from ofa_core.model.search import special_token_ids
from ofa_core.plugin import LossContext, LossOutput
from ofa_core.trainer.scst_options import ScstOptions

ENCODER_INPUTS = ("input_ids", "attention_mask", "patch_images", "patch_masks")


def advantages(rewards: torch.Tensor) -> torch.Tensor:
    """`rewards` [inputs, k] minus, for each candidate, the mean reward of the other k-1 candidates of its input."""
    k = rewards.shape[1]
    baseline = (rewards.sum(1, keepdim=True) - rewards) / (k - 1)
    return rewards - baseline


def inputs_of(examples: Sequence[Any]) -> dict[int, list[str]]:
    """The decoder rows to search from, one per distinct (image, source text), each with the references of all the
    batch's rows of that input: an image whose captions share the batch is searched and rewarded once."""
    first: dict[tuple, int] = {}
    references: dict[int, dict[str, None]] = {}
    for row, example in enumerate(examples):
        chosen = first.setdefault((example.image_key, example.source_ids), row)
        references.setdefault(chosen, {}).update(dict.fromkeys(example.references))
    return {row: list(refs) for row, refs in references.items()}


def _select(encoded: OFAEncoderOutput, index: torch.Tensor) -> OFAEncoderOutput:
    return OFAEncoderOutput(
        last_hidden_state=encoded.last_hidden_state.index_select(0, index),
        padding_mask=encoded.padding_mask.index_select(0, index),
        position_embeddings=encoded.position_embeddings.index_select(0, index),
    )


class ScstLoss:
    """`loss(model, batch, context) -> LossOutput`; the reward metric is built (and fitted) at the first call."""

    drives_model = True

    def __init__(self, options: ScstOptions) -> None:
        self.options = options
        self.reward: Any = None

    def _reward(self, context: LossContext) -> Any:
        if self.reward is None:
            reward = context.metric(self.options.reward, self.options.reward_options)
            if not callable(getattr(reward, "rewards", None)):
                raise OFAError(
                    f"loss.reward: metric '{self.options.reward}' has no rewards(candidates, references) method; "
                    f"name a reward metric such as 'cider_d'"
                )
            if callable(getattr(reward, "fit", None)):
                reward.fit(context.train_references(), self.options.references)
            self.reward = reward
        return self.reward

    def _search(self, model: Any, inputs: dict, encoded: OFAEncoderOutput | None, context: LossContext) -> torch.Tensor:
        """[inputs x candidates, 1 + L] candidate ids (start token first, pad after EOS), best first per input;
        searched in eval mode without a graph, then the model is back in training mode."""
        config = official_generation_config(self.options.search, **special_token_ids(model.config))
        config.num_return_sequences = self.options.candidates
        model.eval()
        with torch.no_grad():
            sequences = model.generate(
                inputs["input_ids"], **source_inputs(inputs), encoder_outputs=encoded, generation_config=config
            )
        context.train_mode()
        return sequences

    def __call__(self, model: Any, batch: dict, context: LossContext) -> LossOutput:
        if "decoder_prompts" in batch:
            raise OFAError("loss: scst searches without decoder prompts; use a prompt with prompt_type 'none'")
        reward = self._reward(context)
        inputs_references = inputs_of(batch["examples"])
        rows = list(inputs_references)
        encoder_rows = batch["encoder_index"][torch.tensor(rows, device=batch["encoder_index"].device)]
        inputs = {key: batch[key].index_select(0, encoder_rows) for key in ENCODER_INPUTS}
        inputs["encoder_index"] = torch.arange(len(rows), device=encoder_rows.device)
        # A frozen encoder (LiT) stays in eval mode while training, so one pass per input serves the search and the
        # re-scoring (with a graph only while the shared word embedding trains).
        encoded = context.encode(inputs) if not model.get_encoder().training else None
        sequences = self._search(model, inputs, encoded, context)
        k = self.options.candidates
        texts = [text.strip() for text in context.tokenizer.batch_decode(sequences[:, 1:], skip_special_tokens=True)]
        references = [inputs_references[row] for row in rows for _ in range(k)]
        scores = torch.tensor(reward.rewards(texts, references), dtype=torch.float32, device=sequences.device)
        advantage = advantages(scores.view(len(rows), k)).view(-1)
        if encoded is None:
            encoded = context.encode(inputs)
        pad = model.config.pad_token_id
        labels = sequences[:, 1:].masked_fill(sequences[:, 1:].eq(pad), IGNORE_INDEX)
        repeat = torch.arange(len(rows), device=sequences.device).repeat_interleave(k)
        logits = model(
            decoder_input_ids=sequences[:, :-1], encoder_outputs=_select(encoded, repeat), use_cache=False
        ).logits
        keep = labels.ne(IGNORE_INDEX)
        log_probs = F.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
        loss = -(log_probs * advantage[:, None] * keep).sum()
        ntokens = int(keep.sum())
        return LossOutput(
            loss,
            ntokens,
            {
                "loss": float(loss.detach()),
                "ntokens": float(ntokens),
                "nsentences": float(len(texts)),
                "reward_sum": float(scores.sum()),
            },
        )
