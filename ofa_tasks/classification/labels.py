"""The task options: where the label set comes from and how predictions are made.

Labels come from the recipe (`labels`) or a file (`labels_file`, read by `ofa_core.plugin.read_answer_list`),
never from the data: the label set must be known to validate a recipe, to evaluate a checkpoint
on any split and to predict, none of which reads the training folder.
"""

from __future__ import annotations

import difflib
import functools

import attrs

from ofa_core import plugin


def _labels_tuple(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"labels must be a list of strings, got {value!r:.40}")
    return tuple(value)


def _check_inline(_instance: object, _attribute: attrs.Attribute, value: tuple | None) -> None:
    if value is None:
        return
    if not value:
        raise ValueError("labels is an empty list; list at least one label")
    seen: dict[str, int] = {}
    for index, label in enumerate(value):
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"labels[{index}] is {label!r}; every label must be non-empty text")
        if label.strip() in seen:
            raise ValueError(f"labels[{index}] {label!r} repeats labels[{seen[label.strip()]}]; labels must be unique")
        seen[label.strip()] = index


@attrs.frozen(field_transformer=plugin.closed_set_fields_last)
class ClassificationOptions(plugin.ClosedSetOptions):
    """Exactly one of `labels` / `labels_file`; `inference` 'rank' (score every label) or 'beam'
    (the closed-set fields are those of `ClosedSetOptions`, with `top_k` 5 by default)."""

    labels: tuple[str, ...] | None = attrs.field(default=None, converter=_labels_tuple, validator=_check_inline)
    """The class labels, as the text the model learns to emit (surrounding spaces are ignored)."""
    labels_file: str | None = plugin.path_option()
    """A UTF-8 file with one label per line (.txt) or a JSON list / object keyed by label (.json), relative to the
    recipe."""
    answer_space: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Targets and candidates are ' ' + label, the tokens OFA's English ImageNet fine-tune learns and scores (GPT-2
    BPE tokens differ with the space); predictions are reported without it."""
    top_k: int = attrs.field(default=5, validator=attrs.fields(plugin.ClosedSetOptions).top_k.validator)
    """Labels ranked per image for `top{k}_accuracy` and the predictions file; capped at the number of labels."""

    def __attrs_post_init__(self) -> None:
        if (self.labels is None) == (self.labels_file is None):
            given = "both labels and labels_file" if self.labels is not None else "neither labels nor labels_file"
            raise ValueError(f"{given} given; set exactly one: labels (a list) or labels_file (one label per line)")


@attrs.frozen
class LabelSet:
    """The labels in order, and where they were declared (for error messages)."""

    labels: tuple[str, ...]
    source: str
    members: frozenset[str] = attrs.field(init=False)

    @members.default
    def _members(self) -> frozenset[str]:
        return frozenset(self.labels)

    def check(self, label: str, record_id: object) -> None:
        """An error naming the record and the fix if `label` is not one of the labels."""
        if label in self.members:
            return
        close = difflib.get_close_matches(label, self.labels, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise plugin.OFAError(
            f"record {record_id!r}: label {label!r} is not one of the {len(self.labels)} labels in "
            f"{self.source}{hint}; add it there or correct the record"
        )


@functools.lru_cache(maxsize=16)
def label_set(options: ClassificationOptions) -> LabelSet:
    """The options' labels, read once per options (records are checked against them one by one)."""
    if options.labels_file is not None:
        return LabelSet(
            plugin.read_answer_list(options.labels_file, "task.options.labels_file"),
            f"labels_file {options.labels_file}",
        )
    return LabelSet(tuple(label.strip() for label in options.labels), "task.options.labels")
