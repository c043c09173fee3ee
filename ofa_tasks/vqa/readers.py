"""VQA readers: JSON lines (image as path, base64 or TSV id) and the official OFA VQA TSV."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core import plugin
from ofa_tasks.vqa.answers import encode, parse_official

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""


def _record(record_id: str, image: bytes | str, question: str, scored: dict[str, float], objects=None) -> dict:
    """`answer` is the most confident answer (the first on ties, as OFA's `max`), `confidence` its score."""
    ranked = sorted(scored, key=scored.get, reverse=True)
    record = {
        "id": record_id,
        "image": image,
        "question": question,
        "answer": ranked[0] if ranked else "",
        "confidence": scored[ranked[0]] if ranked else 1.0,
        "references": [encode(answer, scored[answer]) for answer in ranked],
    }
    return record if objects is None else {**record, "objects": objects}


@attrs.frozen
class VqaJsonlOptions(plugin.SplitFilesOptions):
    """One JSONL per split: `image` (path relative to the file, base64, or an id in `images`), `question`,
    `answers` as `[{"answer", "confidence"}]` or a plain list (each answer confidence 1), optional `objects`
    (a list of detected object labels, or OFA's 'a&&b' text)."""


def _answers(value) -> dict[str, float]:
    if isinstance(value, str):
        value = [value]
    scored: dict[str, float] = {}
    for item in value or []:
        answer, confidence = (
            (item["answer"], float(item.get("confidence", 1.0))) if isinstance(item, dict) else (item, 1.0)
        )
        scored[str(answer)] = max(confidence, scored.get(str(answer), 0.0))
    return scored


@READERS.add("vqa_jsonl", "JSON lines: image (path, base64 or TSV id), question, answers")
def read_vqa_jsonl(options: VqaJsonlOptions, split: str) -> Iterator[dict]:
    def record(row: plugin.SplitRow) -> dict:
        values = row.values
        try:
            question, image_value = str(values["question"]), str(values["image"])
            scored = _answers(values.get("answers"))
            objects = values.get("objects")
            if objects is not None and not isinstance(objects, (str, list)):
                raise TypeError(f"objects is {objects!r:.40}, not a list of labels")
        except (KeyError, TypeError, ValueError) as error:
            raise plugin.UnusableRow(
                f"not a VQA line ({error.__class__.__name__}: {error}); needs image, question, answers"
            ) from None
        return _record(str(values.get("id", row.default_id)), row.image(image_value), question, scored, objects)

    yield from plugin.jsonl_records(options, split, record)


OFFICIAL_COLUMNS = (0, 5, 2, 3, 4)
"""question-id, image, question, answers, objects: `selected_cols` of the official VQA scripts."""


@attrs.frozen
class VqaTsvOptions(plugin.PerSplitFiles):
    """The official OFA VQA TSV per split; `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = plugin.columns_option(
        "question-id, image, question, answers and objects", 5, default=OFFICIAL_COLUMNS
    )
    """Where question-id, image (base64), question, answers ('conf|!+ans&&...') and objects ('a&&b') are:
    [0, 5, 2, 3, 4] in OFA's vqa_train/val/test TSVs."""


@READERS.add(
    "vqa_tsv", "official OFA VQA TSV (question-id, image, question, answers, objects; columns as selected_cols)"
)
def read_vqa_tsv(options: VqaTsvOptions, split: str) -> Iterator[dict]:
    id_column, image_column, question_column, answers_column, objects_column = options.columns

    def record(row: plugin.SplitRow) -> dict:
        fields = row.values
        try:
            answers = parse_official(fields[answers_column])
        except ValueError as error:
            raise plugin.UnusableRow(
                f"column {answers_column} (answers) {fields[answers_column][:60]!r}: {error}; "
                f"expected 'confidence|!+answer&&...', or check data.reader.columns"
            ) from None
        image = row.image_column(image_column)
        return _record(fields[id_column], image, fields[question_column], answers, fields[objects_column])

    yield from plugin.tsv_records(options, split, record)
