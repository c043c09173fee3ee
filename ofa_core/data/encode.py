"""Reader records to token ids: the task's preprocess, its prompt template, the OFA tokenizer.

Text is tokenized once, up front (cheap, and it lets the sampler know sizes); images stay as the
reader gave them and are decoded per batch, since 55k decoded images would not fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ofa_core._errors import OFAError
from ofa_core.model.labels import IGNORE_INDEX
from ofa_core.plugin import PromptTemplate


class RecordError(OFAError):
    """A record lacks a field its prompt template names."""


@attrs.frozen
class Example:
    """One training/evaluation sample, tokenized.

    source_ids: `[0] + ids + [2]`; decoder_input_ids: `[0] + prompt + target`;
    labels: `prompt→IGNORE_INDEX + target + [2]` (same length as decoder_input_ids).
    `decoder_prompt` is the part of the decoder input decoding forces (no BOS); `loss_weight` scales the
    example's loss (the record's `loss_weight`, e.g. a VQA answer's confidence).
    """

    id: Any
    source_ids: tuple[int, ...]
    decoder_input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    image: Any
    image_key: Any
    references: tuple[Any, ...]
    record: dict
    decoder_prompt: tuple[int, ...] = ()
    loss_weight: float = 1.0


def image_key(record: dict) -> Any:
    """What identifies a record's image: its `image_id`, else the image value (path/bytes/base64) itself."""
    if record.get("image_id") is not None:
        return ("id", record["image_id"])
    image = record.get("image")
    if image is None or isinstance(image, (str, bytes)):
        return ("value", image)
    return ("object", id(image))


def _format(template: str, record: dict, what: str) -> str:
    try:
        return template.format(**record)
    except KeyError as err:
        raise RecordError(
            f"record {record.get('id')!r}: the {what} template {template!r} needs field {err}, "
            f"but the record has {sorted(record)}; fix the reader or the prompt"
        ) from None


@attrs.frozen
class RecordEncoder:
    """Tokenizes records with one prompt template (truncating source and target like fairseq)."""

    tokenizer: Any
    template: PromptTemplate
    max_source_length: int | None = None
    max_target_length: int | None = None

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_source(self, record: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(encoder ids with BOS and EOS, decoder prompt without BOS) of a record, as its prompt type says.

        'prev_output' prompts with the source tokens, 'src' with the source tokens and EOS (OFA's prompt types);
        a template's `decoder_prefix` with its own text.
        """
        tok, template = self.tokenizer, self.template
        source = self._ids(_format(template.source, record, "source"))
        if self.max_source_length:
            source = source[: self.max_source_length - 2]
        bos, eos = tok.bos_token_id, tok.eos_token_id
        if template.prompt_type == "prev_output":
            prompt = tuple(source)
        elif template.prompt_type == "src":
            prompt = (*source, eos)
        elif template.decoder_prefix:
            prompt = tuple(self._ids(_format(template.decoder_prefix, record, "decoder prefix")))
        else:
            prompt = ()
        return (bos, *source, eos), prompt

    def encode(self, record: dict) -> Example:
        source_ids, prompt = self.encode_source(record)
        target = self._ids(_format(self.template.target, record, "target"))
        if self.max_target_length:
            target = target[: self.max_target_length]
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        references = record.get("references") or ()
        weight = record.get("loss_weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight >= 0:
            raise RecordError(
                f"record {record.get('id')!r}: loss_weight must be a number >= 0, got {weight!r}; fix the reader"
            )
        return Example(
            id=record.get("id"),
            source_ids=source_ids,
            decoder_input_ids=(bos, *prompt, *target),
            labels=(*([IGNORE_INDEX] * len(prompt)), *target, eos),
            image=record.get("image"),
            image_key=image_key(record),
            references=tuple(references) if not isinstance(references, str) else (references,),
            record=record,
            decoder_prompt=prompt,
            loss_weight=float(weight),
        )


def encode_records(
    records: Iterable[dict], encoder: RecordEncoder, split: str, preprocess: Callable | None = None, options: Any = None
) -> list[Example]:
    """Every record the task's `preprocess` keeps, tokenized."""
    examples = []
    for record in records:
        if preprocess is not None:
            record = preprocess(record, split, options)
            if record is None:
                continue
        examples.append(encoder.encode(record))
    return examples
