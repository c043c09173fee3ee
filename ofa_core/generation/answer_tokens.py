"""A closed set's answers as token ids, and why two of them cannot be told apart, without torch.

`ofa recipe validate` runs this with the model directory's tokenizer.json alone (`JsonTokenizer`), so a label
set that collides is reported before any weights load; `ClosedSetDecoder` needs the same ids at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ofa_core._errors import OFAError
from ofa_core.plugin import ClosedSet


def singular(noun: str) -> str:
    return noun[:-1] if noun.endswith("s") else noun


def unknown_ids(tokenizer: Any) -> set[int]:
    """Ids the tokenizer gives text its vocabulary lacks: its unk token, and its model's own unknown piece
    (a WordPiece vocabulary's `[UNK]`, which OFA's Chinese tokenizer keeps apart from `<unk>`)."""
    ids = {tokenizer.unk_token_id}
    model_unk = getattr(getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None), "unk_token", None)
    if isinstance(model_unk, str):
        ids.add(tokenizer.convert_tokens_to_ids(model_unk))
    return {index for index in ids if isinstance(index, int)}


def identical(noun: str, first: str, second: str, ids: tuple[int, ...], tokenizer: Any) -> str:
    """Why two answers of a closed set cannot be told apart: unknown characters when that is the cause."""
    unknown = unknown_ids(tokenizer)
    if not unknown.intersection(ids):
        return f"closed set: {noun} {first!r} and {second!r} tokenize identically; keep one of them"
    lacking: list[str] = []
    for character in dict.fromkeys(first + second):
        if not character.isspace() and unknown.intersection(
            tokenizer(character, add_special_tokens=False)["input_ids"]
        ):
            lacking.append(character)
    tokens = " ".join(tokenizer.convert_ids_to_tokens(list(ids)))
    tokens = tokens if len(ids) == 1 else repr(tokens)
    lacks = f"lacks {', '.join(lacking)}" if lacking else "lacks some of their characters"
    return (
        f"closed set: {noun} {first!r} and {second!r} both become {tokens}: this model's vocabulary {lacks}; "
        f"use {noun} written with characters it knows, or a model whose vocabulary has them"
    )


def answer_ids(closed_set: ClosedSet, tokenizer: Any) -> list[tuple[int, ...]]:
    """Each answer's token ids (no BOS or EOS), as training targets have them; an answer that tokenizes to
    nothing, or like another, is an `OFAError` saying which and why."""
    sequences = [tuple(tokenizer(answer, add_special_tokens=False)["input_ids"]) for answer in closed_set.answers]
    noun = closed_set.noun
    seen: dict[tuple[int, ...], str] = {}
    for answer, ids in zip(closed_set.answers, sequences):
        if not ids:
            raise OFAError(f"closed set: {singular(noun)} {answer!r} tokenizes to nothing; remove it from the {noun}")
        if ids in seen:
            raise OFAError(identical(noun, seen[ids], answer, ids, tokenizer))
        seen[ids] = answer
    return sequences


class JsonTokenizer:
    """The calls above, answered by a saved tokenizer's `tokenizer.json` through the `tokenizers` library alone:
    the file holds the whole pipeline, so the ids are those the model's transformers tokenizer gives."""

    def __init__(self, directory: str | Path) -> None:
        from tokenizers import Tokenizer

        directory = Path(directory)
        self.backend_tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        config_file = directory / "tokenizer_config.json"
        config = orjson.loads(config_file.read_bytes()) if config_file.is_file() else {}
        unk = config.get("unk_token")
        unk = unk.get("content") if isinstance(unk, dict) else unk
        self.unk_token_id = self.backend_tokenizer.token_to_id(unk) if isinstance(unk, str) else None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids}

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.backend_tokenizer.token_to_id(token)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.backend_tokenizer.id_to_token(index) for index in ids]
