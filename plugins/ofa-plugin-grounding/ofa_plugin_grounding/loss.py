"""Label-smoothed cross-entropy, summed over target tokens (the LossSpec contract)."""

from __future__ import annotations

import attrs

from ofa_core.specs import LossOutput


@attrs.frozen
class LossOptions:
    label_smoothing: float = attrs.field(default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])
    """Probability mass spread uniformly over the vocabulary (OFA's grounding uses 0.1)."""


def build_loss(options: LossOptions):
    """The loss function: sums over tokens, so the trainer can normalise across accumulation and ranks."""
    def loss(output, batch) -> LossOutput:
        labels = batch["labels"]
        mask = labels.ne(-100)
        log_probs = output.logits.float().log_softmax(-1)  # fp32: fp16 softmax overflowed in OFA's history
        nll = -log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        uniform = -log_probs.mean(-1)
        smoothing = options.label_smoothing
        per_token = (1.0 - smoothing) * nll + smoothing * uniform
        tokens = int(mask.sum())
        return LossOutput(
            loss_sum=per_token.masked_fill(~mask, 0.0).sum(),
            sample_size=tokens,
            logs={"nll_loss": float(nll.masked_fill(~mask, 0.0).sum()), "ntokens": float(tokens)},
        )
    return loss
