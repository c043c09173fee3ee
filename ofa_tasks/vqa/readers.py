"""VQA readers: JSON lines (image as path, base64 or TSV id) and the official OFA VQA TSV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import orjson

from ofa_core.errors import OFAError
from ofa_core.records import BAD_RECORD_POLICIES, BadRows, decode_image, image_field
from ofa_core.specs import path_option
from ofa_core.tsv import TsvIndex
from ofa_tasks.vqa.answers import encode, parse_official


def _split_file(options, split: str) -> Path:
    path = getattr(options, split, None)
    if path is None:
        raise OFAError(f"data.reader.{split}: no file for the {split} split; add \"{split}\": \"path\" to the reader options")
    return Path(path)


def _record(record_id: str, image: bytes, question: str, scored: dict[str, float]) -> dict:
    ranked = sorted(scored, key=scored.get, reverse=True)
    return {"id": record_id, "image": image, "question": question, "answer": ranked[0] if ranked else "",
            "references": [encode(answer, scored[answer]) for answer in ranked]}


@attrs.frozen
class VqaJsonlOptions:
    """One JSONL per split: `image` (path relative to the file, base64, or an id in `images`), `question`,
    `answers` as `[{"answer", "confidence"}]` or a plain list (each answer confidence 1)."""

    train: str | None = path_option()
    valid: str | None = path_option()
    test: str | None = path_option()
    images: str | None = path_option()
    bad_records: str = attrs.field(default="skip", validator=attrs.validators.in_(BAD_RECORD_POLICIES))


def _answers(value) -> dict[str, float]:
    scored: dict[str, float] = {}
    for item in value or []:
        answer, confidence = (item["answer"], float(item.get("confidence", 1.0))) if isinstance(item, dict) else (item, 1.0)
        scored[str(answer)] = max(confidence, scored.get(str(answer), 0.0))
    return scored


def read_vqa_jsonl(options: VqaJsonlOptions, split: str) -> Iterator[dict]:
    path = _split_file(options, split)
    images = TsvIndex(options.images) if options.images else None
    bad = BadRows(options.bad_records)
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = orjson.loads(line)
                question, image_value = str(row["question"]), str(row["image"])
                scored = _answers(row.get("answers"))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                bad(where, f"not a VQA line ({error.__class__.__name__}: {error}); needs image, question, answers")
                continue
            try:
                if images is not None and image_value in images:
                    image = decode_image(images[image_value][1])
                else:
                    image = image_field(image_value, path.parent)
            except (ValueError, IndexError) as error:
                bad(where, f"image: {error}")
                continue
            yield _record(str(row.get("id", f"{path.stem}:{number}")), image, question, scored)
    bad.summarise(path, split)


@attrs.frozen
class VqaTsvOptions:
    """The official OFA VQA TSV per split: question-id, image-id, question, answers ('conf|!+ans&&...'), objects, image."""

    train: str | None = path_option()
    valid: str | None = path_option()
    test: str | None = path_option()
    bad_records: str = attrs.field(default="skip", validator=attrs.validators.in_(BAD_RECORD_POLICIES))


def read_vqa_tsv(options: VqaTsvOptions, split: str) -> Iterator[dict]:
    path = _split_file(options, split)
    bad = BadRows(options.bad_records)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 6:
                bad(f"{path}:{number}", f"expected 6 tab-separated columns, found {len(fields)}")
                continue
            try:
                image = decode_image(fields[5])
            except ValueError as error:
                bad(f"{path}:{number}", f"image: {error}")
                continue
            yield _record(fields[0], image, fields[2], parse_official(fields[3]))
    bad.summarise(path, split)
