"""What a command does with a recipe, and so which of its paths and settings must hold.

A training run (`ofa run`, `ofa recipe validate`) needs all of it: the model it starts from, each split's file,
the loss and its files, the checkpoint it resumes, the training settings. An evaluation (`ofa eval`) takes its
model from `--checkpoint` and reads one split, the task's own files (answers, labels), its metrics and search,
and the few training settings that shape an evaluation (`EVALUATION_SETTINGS`): the rest of the recipe is
neither checked nor applied, so a converted official model is scored with nothing else on disk.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Purpose:
    """A training run, or an evaluation of given splits."""

    trains: bool
    """Whether the command trains: the starting model (`model.checkpoint`), the loss, the resumed checkpoint and the
    training settings are read and checked."""
    splits: frozenset[str] | None = None
    """The reader splits whose files must exist; None: every split the reader names."""


TRAINING = Purpose(trains=True)


def evaluation(split: str) -> Purpose:
    """Scoring a `--checkpoint` on `split`."""
    return Purpose(trains=False, splits=frozenset({split}))
