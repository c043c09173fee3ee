"""The default loss: fairseq OFA's label-smoothed cross entropy, summed, over non-padding targets.

Returned as a sum with its token count (`LossOutput`) so the trainer can divide by the token
count of the whole step across accumulation and processes, which is fairseq's contract.
`ofa_core.trainer.plugin` registers it as the `label_smoothed_cross_entropy` loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.plugin import LossOutput


def label_smoothed_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    epsilon: float,
    constraint_mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> LossOutput:
    """`(1 - ε - ε_i)·nll + ε_i·Σ_v(−log p_v)` with `ε_i = ε/(V−1)`, summed over targets != IGNORE_INDEX.

    This is OFA's `adjust_label_smoothed_cross_entropy`: the smoothing mass is spread over the
    other V−1 tokens, unlike torch's ε/V. With `constraint_mask` ([B, T, V] bool, a closed set's
    allowed tokens) the other logits are -inf and the smoothing covers the allowed tokens only
    (`ε_i = ε/(n_allowed−1)`). `weights` ([B]) scale each row's token losses, as OFA's `conf` scales the
    log-probabilities of a VQA answer by its confidence. Computed in fp32 or wider (OFA's fp16 NaN history).
    """
    keep = labels.ne(IGNORE_INDEX)
    kept = logits[keep]
    kept = kept if kept.dtype == torch.float64 else kept.float()
    if constraint_mask is not None:
        allowed = constraint_mask[keep]
        kept = kept.masked_fill(~allowed, float("-inf"))
        others = (allowed.sum(-1) - 1).clamp(min=1).to(kept.dtype)
    else:
        others = torch.tensor(kept.shape[-1] - 1, dtype=kept.dtype)
    lprobs = F.log_softmax(kept, dim=-1)
    target = labels[keep]
    nll = -lprobs.gather(-1, target[:, None]).squeeze(-1)
    smooth = -lprobs.masked_fill(torch.isinf(lprobs), 0.0).sum(-1) if constraint_mask is not None else -lprobs.sum(-1)
    eps_i = epsilon / others
    if weights is not None:
        row_weights = weights.to(kept.dtype)[:, None].expand_as(labels)[keep]
        nll, smooth = nll * row_weights, smooth * row_weights
    loss = ((1.0 - epsilon - eps_i) * nll + eps_i * smooth).sum()
    ntokens = int(keep.sum())
    return LossOutput(
        loss,
        ntokens,
        {
            "loss": float(loss.detach()),
            "nll_loss": float(nll.detach().sum()),
            "ntokens": float(ntokens),
            "nsentences": float(labels.shape[0]),
        },
    )
