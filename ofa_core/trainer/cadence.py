"""The cadence of logging, evaluation and saving: one rule for all three (the learning-rate schedule is in `optim`)."""

from __future__ import annotations


def due(strategy: str, every: int, step: int, end_of_epoch: bool, last_step: bool = False) -> bool:
    """Whether an event on `strategy` happens after optimizer step `step`.

    'steps': every `every` steps, and on the last step when `last_step` says this is it;
    'epoch': when the step ended an epoch; 'no': never.
    """
    if strategy == "steps":
        return step % every == 0 or last_step
    if strategy == "epoch":
        return end_of_epoch
    return False
