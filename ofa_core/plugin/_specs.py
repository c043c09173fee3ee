"""What a plugin declares: frozen attrs classes the registry stores and the trainer runs.

A plugin never runs a training loop; it hands the core these specs through the hooks in
`ofa_core.plugin._hooks`. Heavy imports (torch, datasets) belong inside `open` / `build`, so listing
plugins stays fast; this module itself does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.model.task_config import PROMPT_TYPES

if TYPE_CHECKING:
    import torch

__all__ = [
    "CLOSED_SET_FIELDS",
    "IGNORE_INDEX",
    "PROMPT_TYPES",
    "ClosedSet",
    "ClosedSetOptions",
    "LossContext",
    "LossOutput",
    "LossSpec",
    "Metric",
    "MetricSpec",
    "NoOptions",
    "PromptTemplate",
    "ReaderSpec",
    "TaskSpec",
    "closed_set_fields_last",
    "is_options_class",
    "path_option",
]

PATH_METADATA = "ofa_path"
"""attrs metadata key marking an option as a file path (see `path_option`)."""


@attrs.frozen
class NoOptions:
    """Options class of a component that takes none; a recipe giving it any option is an error."""


def is_options_class(value: Any) -> bool:
    """True for a frozen attrs class: the convention for every component's options.

    Options are built from recipe JSON with `options(**values)`, so attrs validators run before
    any compute and unknown keys fail as unexpected keyword arguments.
    """
    return (
        isinstance(value, type)
        and attrs.has(value)
        and getattr(value.__setattr__, "__name__", "") == "_frozen_setattrs"
    )


def path_option(*, default: str | None = None, must_exist: bool = True, split: str | None = None) -> Any:
    """An options field holding a file path: recipes resolve it against the recipe's folder.

    With `must_exist`, `ofa recipe validate` reports a missing file (with the JSON path) before
    any compute, instead of the reader failing mid-run. A reader's file of one `split` ('train', 'valid',
    'test') is required only by commands that read that split: `ofa eval --split valid` needs no train file.
    """
    return attrs.field(
        default=default,
        metadata={PATH_METADATA: {"must_exist": must_exist, "split": split}},
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
    )


def _options_class(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not is_options_class(value):
        raise TypeError(
            f"{attribute.name} must be a frozen attrs class (use ofa_core.plugin.NoOptions for none), got {value!r}"
        )


def _nonempty(_instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


@attrs.frozen
class PromptTemplate:
    """How a record becomes model text, in one language.

    `source` and `target` are `str.format` templates over record fields, e.g.
    `source=' what does the image describe?'`, `target='{caption}'`. Leading spaces are
    significant: OFA's English prompts start with a space, and the tokenizer sees it.
    """

    name: str = attrs.field(validator=_nonempty)
    """Registry name, by convention `<task>.<lang>` (e.g. 'caption.en')."""
    lang: str = attrs.field(validator=_nonempty)
    """Language code ('en', 'zh'); selects the tokenizer's text handling."""
    source: str = attrs.field(validator=attrs.validators.instance_of(str))
    """Encoder text template."""
    target: str = attrs.field(validator=attrs.validators.instance_of(str))
    """Decoder target template (what the loss is computed on)."""
    decoder_prefix: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    """Optional decoder text forced before the target and excluded from the loss."""
    prompt_type: Literal["none", "src", "prev_output"] = attrs.field(
        default="none", validator=attrs.validators.in_(PROMPT_TYPES)
    )
    """What the decoder sees before the target, as OFA's `--prompt-type`: 'none' only BOS; 'prev_output' the
    whole source without its EOS (VQA and SNLI-VE fine-tunes); 'src' the whole source with its EOS (GLUE), the
    answer then read at the last source position. The prompt is forced in decoding and masked out of the loss."""

    def __attrs_post_init__(self) -> None:
        if self.decoder_prefix and self.prompt_type != "none":
            raise ValueError(f"prompt {self.name!r}: give decoder_prefix or prompt_type {self.prompt_type!r}, not both")


@attrs.frozen
class ReaderSpec:
    """A dataset reader: `open(options, split)` yields records (dicts).

    A record carries `id`, `image` (a path, bytes, a base64 string, a PIL image or None), the
    text fields its prompt templates name, and `references` (list[str]) for evaluation. The core
    does image transforms, tokenization and collation; a reader only yields raw records.
    """

    options: type = attrs.field(validator=_options_class)
    """Frozen attrs class built from the recipe's `data.reader` options (paths, columns...)."""
    open: Callable[[Any, str], Iterable[dict]] = attrs.field(validator=attrs.validators.is_callable())
    """`open(options_instance, split) -> Iterable[dict]`; split is 'train', 'valid' or 'test'."""
    description: str = ""
    """One line shown by `ofa tasks` / `ofa plugins`."""


@attrs.frozen
class LossOutput:
    """A loss summed (not averaged) over the batch, with the count to divide it by.

    The trainer divides the total `loss_sum` by the total `sample_size` across gradient
    accumulation steps and processes, so the gradient does not depend on how a batch was split.
    """

    loss_sum: torch.Tensor
    """Scalar tensor with grad: the summed loss of this batch."""
    sample_size: int
    """What `loss_sum` is a sum over (usually the number of target tokens)."""
    logs: dict[str, float] = attrs.field(factory=dict)
    """Sums to log (e.g. {'nll_loss': ..., 'ntokens': ...}); the trainer sums them across steps."""


@attrs.frozen
class LossSpec:
    """A loss: `build(options)` returns `loss(model_output, batch) -> LossOutput`.

    `batch` is a dict holding the model inputs plus `labels` ([B, T], IGNORE_INDEX = no loss) and
    `target_mask`; `model_output` is transformers' Seq2SeqLMOutput (`.logits` is [B, T, V]).

    A loss that must run the model itself (SCST generates, then re-scores its own candidates) sets the
    attribute `drives_model = True` on the function it builds: the trainer then skips its teacher-forced
    forward and calls `loss(model, batch, context)` with a `LossContext`.
    """

    options: type = attrs.field(validator=_options_class)
    """Frozen attrs class built from the recipe's `loss` options (e.g. label_smoothing)."""
    build: Callable[[Any], Callable[[Any, Mapping[str, Any]], LossOutput]] = attrs.field(
        validator=attrs.validators.is_callable()
    )
    """`build(options_instance)` -> the loss function."""
    description: str = ""
    """One line shown by `ofa plugins`."""


@attrs.frozen
class LossContext:
    """What the trainer hands a loss with `drives_model`: the run's parts such a loss cannot build itself."""

    tokenizer: Any
    """The processor's tokenizer (to decode candidates and build targets)."""
    encode: Callable[[Mapping[str, Any]], Any]
    """`encode(batch)`: the trainer's encoder pass, one per encoder row, expanded by `batch['encoder_index']`;
    without a graph when nothing in the encoder trains. A frozen encoder (LiT) stays in eval mode while training,
    so one pass serves generation and scoring alike."""
    train_mode: Callable[[], None]
    """Puts the model back in training mode as the trainer does (a frozen encoder stays in eval mode)."""
    metric: Callable[[str, Mapping[str, Any]], Metric]
    """`metric(name, options)`: a fresh registered metric built with these options (e.g. a reward)."""
    train_references: Callable[[], list[list[str]]]
    """The references of the task's training data, one list per distinct input (image and source text),
    for corpus statistics such as CIDEr-D's document frequencies."""


@runtime_checkable
class Metric(Protocol):
    """A metric whose state merges by summation across processes.

    Each process calls `update`; the trainer sums the `state()` dicts of all processes (numbers
    add, lists concatenate), calls `load_state(merged)` on one metric, then `compute()`.

    For a task with a `ClosedSet` of `top_k > 1`, the trainer also calls the metric's optional
    `update_rankings(rankings, references)` with each example's `top_k` answers, best first
    (top-k accuracy needs them; metrics without the method are not called).

    A metric usable as a reward (the `scst` loss's `reward`) also has `rewards(candidates, references) -> list[float]`,
    one score per candidate against its own reference list, and may have `fit(references, beside)` to compute corpus
    statistics from the training references first (cached beside the file `beside`, when given).

    A metric whose spec names `example_score` also has `example_scores() -> list[dict]`: one dict per example it
    was `update`d with, in order, each with `score` (a float on the scale of the reported value) and any flags
    (e.g. `correct`). The core calls it on a fresh metric `update`d with the whole split (never after `load_state`),
    so corpus statistics such as CIDEr-D's document frequencies come from the split, and the mean of `score` equals
    `compute()[example_score]`. The rows of the predictions file carry these fields; the report sorts by `score`.
    """

    def update(self, predictions: list[str], references: list[list[str]]) -> None:
        """Add a batch: one prediction and a list of reference strings per example."""

    def state(self) -> dict:
        """Current state; each value a number or a list, so states merge by `+`."""

    def load_state(self, merged: dict) -> None:
        """Replace the state with `merged` (the sum of every process's `state()`)."""

    def compute(self) -> dict[str, float]:
        """Scores from the current state, e.g. {'acc@0.5': 0.73}."""


@attrs.frozen
class MetricSpec:
    """A metric: `build(options)` returns a fresh `Metric`."""

    options: type = attrs.field(validator=_options_class)
    """Frozen attrs class built from the recipe's metric options (e.g. tokenize='char')."""
    build: Callable[[Any], Metric] = attrs.field(validator=attrs.validators.is_callable())
    """`build(options_instance)` -> a new, empty Metric."""
    higher_is_better: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    """Direction used for `metric_for_best_model` when the recipe does not say."""
    description: str = ""
    """One line shown by `ofa plugins`."""
    example_score: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    """Optional: the key of `compute()` that the mean of the examples' `score` reproduces (e.g. 'cider'); the metric
    then has `example_scores()` (see `Metric`). None: the metric gives no per-example scores."""


def _answers(_instance: Any, _attribute: attrs.Attribute, value: tuple) -> None:
    if not value or not all(isinstance(answer, str) and answer for answer in value):
        raise ValueError("ClosedSet.answers must be a non-empty list of non-empty strings")
    if len(set(value)) != len(value):
        raise ValueError(f"ClosedSet.answers has duplicates: {sorted({a for a in value if value.count(a) > 1})[:5]}")


CLOSED_SET_FIELDS = ("inference", "top_k", "restrict_loss")
"""The fields of `ClosedSetOptions`, in the order they come after a subclass's own fields."""


def closed_set_fields_last(_cls: type, fields: list[attrs.Attribute]) -> list[attrs.Attribute]:
    """attrs `field_transformer` putting the `ClosedSetOptions` fields after a subclass's own.

    attrs puts inherited fields first; with `@attrs.frozen(field_transformer=closed_set_fields_last)`
    a task's options read in the order a recipe writes them (`answers`, then `inference`, `top_k`...),
    and a subclass that redefines one of them (another default) keeps it in its place.
    """
    tail = {field.name: field for field in fields if field.name in CLOSED_SET_FIELDS}
    return [field for field in fields if field.name not in tail] + [
        tail[name] for name in CLOSED_SET_FIELDS if name in tail
    ]


@attrs.frozen(field_transformer=closed_set_fields_last)
class ClosedSetOptions:
    """How a closed set of answers is used: the options every closed-set task (VQA, classification) shares.

    A task's options class subclasses it, adds where its answers come from, and builds its
    `ClosedSet` with `options.closed_set(answers)`. To change a default, redefine that one field
    (e.g. `top_k: int = attrs.field(default=5, validator=attrs.fields(ClosedSetOptions).top_k.validator)`).
    """

    inference: Literal["rank", "beam"] = attrs.field(default="rank", validator=attrs.validators.in_(("rank", "beam")))
    """'rank' scores every answer by its summed log-probability and takes the best (OFA's all-candidate inference);
    'beam' constrains beam search to the answers' token trie."""
    top_k: int = attrs.field(default=1, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    """Best answers per example handed to metrics' `update_rankings` and written to each prediction's `ranking`
    (scores every answer)."""
    restrict_loss: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Train with logits outside the answers' tokens masked and label smoothing spread over allowed tokens only
    (OFA's constraint masks)."""

    def closed_set(self, answers: Iterable[str], *, top_k: int | None = None) -> ClosedSet:
        """The `ClosedSet` of `answers` decoded with these options (`top_k` overrides, e.g. capped at len(answers))."""
        return ClosedSet(
            answers,
            inference=self.inference,
            top_k=self.top_k if top_k is None else top_k,
            restrict_loss=self.restrict_loss,
        )


@attrs.frozen(field_transformer=closed_set_fields_last)
class ClosedSet(ClosedSetOptions):
    """A fixed set of answers (class labels, a VQA answer list) that decoding must stay inside.

    Answers are tokenized like training targets and stored in a token trie. With `inference`
    'rank' every answer is scored by its summed log-probability (teacher-forced, trie-masked) and
    the best is the prediction: OFA's all-candidate inference, the official default for VQA and
    ImageNet. With 'beam', beam search is constrained to the trie (OFA's `--beam-search-vqa-eval`).
    The other fields are those of `ClosedSetOptions`: `ClosedSet(answers, inference=..., top_k=..., restrict_loss=...)`.
    """

    answers: tuple[str, ...] = attrs.field(converter=tuple, validator=_answers)
    """The allowed answers, as the target text the model is trained to emit."""
    noun: str = attrs.field(default="answers", kw_only=True, eq=False, validator=attrs.validators.instance_of(str))
    """What the recipe calls the answers ('answers', 'labels'), as error messages name them; wording only, so not
    compared (two sets that decode alike are equal)."""


@attrs.frozen
class TaskSpec:
    """A task ties registered components together by name; a recipe picks a task and may override any part."""

    prompts: dict[str, str] = attrs.field(
        validator=attrs.validators.deep_mapping(
            attrs.validators.instance_of(str), attrs.validators.instance_of(str), attrs.validators.instance_of(dict)
        )
    )
    """Language -> registered prompt template name, e.g. {'en': 'caption.en', 'zh': 'caption.zh'}."""
    reader: str = attrs.field(validator=attrs.validators.instance_of(str))
    """Default reader name (a recipe's `data.reader` may replace it)."""
    loss: str = attrs.field(validator=attrs.validators.instance_of(str))
    """Default loss name."""
    metrics: tuple[str, ...] = attrs.field(
        converter=tuple, validator=attrs.validators.deep_iterable(attrs.validators.instance_of(str))
    )
    """Default metric names; the first is the default `metric_for_best_model`."""
    generation: str | dict = attrs.field(validator=attrs.validators.instance_of((str, dict)))
    """A key of `ofa_core.model.search.OFFICIAL_SEARCH` (e.g. 'caption'; a language's own entry such as
    'caption-zh' is used for that language's prompt) or GenerationConfig kwargs."""
    options: type | None = attrs.field(default=None, validator=attrs.validators.optional(_options_class))
    """Frozen attrs class for the recipe's `task.options`, passed to the callables below."""
    preprocess: Callable | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.is_callable())
    )
    """`preprocess(record, split, options) -> record | None` (None drops the record); pure."""
    postprocess: Callable | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.is_callable())
    )
    """`postprocess(text, record, options) -> prediction` applied to generated text (already stripped); pure. The
    prediction is what every output carries as `prediction`: a string, or a JSON value such as grounding's box
    `[x0, y0, x1, y1]` (None: no answer)."""
    closed_set: Callable | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.is_callable())
    )
    """`closed_set(options) -> ClosedSet | None`: answers decoding is constrained to (None: open-ended)."""
    allowed_tokens: Callable | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.is_callable())
    )
    """`allowed_tokens(options, tokenizer) -> token ids | None`: what open-ended decoding may emit (EOS is always
    allowed), e.g. grounding's `<bin_*>` tokens; a None function or result: the whole vocabulary."""
    description: str = ""
    """One line shown by `ofa tasks`."""
