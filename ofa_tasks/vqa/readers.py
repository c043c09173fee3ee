"""VQA readers: JSON lines (image as path, base64 or TSV id) and the official OFA VQA TSV."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core.plugin.records import BadRows, PerSplitFiles, SplitFilesOptions, decode_image, image_reference, jsonl_rows, tsv_rows
from ofa_tasks.vqa.answers import encode, parse_official


def _record(record_id: str, image: bytes | str, question: str, scored: dict[str, float]) -> dict:
    ranked = sorted(scored, key=scored.get, reverse=True)
    return {"id": record_id, "image": image, "question": question, "answer": ranked[0] if ranked else "",
            "references": [encode(answer, scored[answer]) for answer in ranked]}


@attrs.frozen
class VqaJsonlOptions(SplitFilesOptions):
    """One JSONL per split: `image` (path relative to the file, base64, or an id in `images`), `question`,
    `answers` as `[{"answer", "confidence"}]` or a plain list (each answer confidence 1)."""


def _answers(value) -> dict[str, float]:
    if isinstance(value, str):
        value = [value]
    scored: dict[str, float] = {}
    for item in value or []:
        answer, confidence = (item["answer"], float(item.get("confidence", 1.0))) if isinstance(item, dict) else (item, 1.0)
        scored[str(answer)] = max(confidence, scored.get(str(answer), 0.0))
    return scored


def read_vqa_jsonl(options: VqaJsonlOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    images = options.image_index()
    bad = BadRows(options.bad_records)
    for number, row in jsonl_rows(path, bad):
        where = f"{path}:{number}"
        try:
            question, image_value = str(row["question"]), str(row["image"])
            scored = _answers(row.get("answers"))
        except (KeyError, TypeError, ValueError) as error:
            bad(where, f"not a VQA line ({error.__class__.__name__}: {error}); needs image, question, answers")
            continue
        try:
            image = image_reference(image_value, path.parent, images)
        except ValueError as error:
            bad(where, f"image: {error}")
            continue
        yield _record(str(row.get("id", f"{path.stem}:{number}")), image, question, scored)
    if images is not None:
        images.close()
    bad.summarise(path, split)


@attrs.frozen
class VqaTsvOptions(PerSplitFiles):
    """The official OFA VQA TSV per split: question-id, image-id, question, answers ('conf|!+ans&&...'), objects, image."""


def read_vqa_tsv(options: VqaTsvOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    for number, fields in tsv_rows(path, 6, bad):
        try:
            answers = parse_official(fields[3])
        except ValueError as error:
            bad(f"{path}:{number}", f"answers {fields[3][:60]!r}: {error}; expected 'confidence|!+answer&&...'")
            continue
        try:
            image = decode_image(fields[5])
        except ValueError as error:
            bad(f"{path}:{number}", f"image: {error}")
            continue
        yield _record(fields[0], image, fields[2], answers)
    bad.summarise(path, split)
