"""Answer lists for closed sets (class labels, VQA candidate answers), read from a file.

A `.txt` file holds one answer per line; a `.json` file a list of answers, or an object whose
keys are the answers; a `.tsv` file one `answer<TAB>index` row per answer. The last two are the
shapes of OFA's answer-to-label pickles once exported; a pickle is never loaded here, because
unpickling runs code.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from ofa_core._errors import OFAError


def read_answer_list(path: str | Path, field: str) -> tuple[str, ...]:
    """The answers in `path`, in file order (its suffix says the form); `field` names the recipe option in errors."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise OFAError(f"{path}: {field}: cannot read the answer list ({error.strerror}); check the path") from None
    if path.suffix.lower() == ".json":
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise OFAError(
                f"{path}: {field}: not valid JSON ({error}); give a list of answers or an object keyed by answer"
            ) from None
        if isinstance(value, dict):
            value = list(value)
        if not isinstance(value, list) or not all(isinstance(answer, str) for answer in value):
            raise OFAError(f"{path}: {field}: expected a JSON list of strings or an object keyed by answer")
        entries = [(index + 1, answer.strip()) for index, answer in enumerate(value)]
        where, empty = "entry", "is empty"
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise OFAError(
                f"{path}: {field}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
            ) from None
        # A .tsv row's answer is its first field (its index column only records the pickle's order).
        table = path.suffix.lower() == ".tsv"
        entries = [
            (number, line.split("\t", 1)[0].strip() if table else line.strip())
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
        where, empty = "line", "has no answer before its tab" if table else "is empty"
    seen: dict[str, int] = {}
    for number, answer in entries:
        if not answer:
            raise OFAError(f"{path}: {field}: {where} {number} {empty}; remove it")
        if answer in seen:
            raise OFAError(f"{path}: {field}: {where} {number} repeats {answer!r} ({where} {seen[answer]}); keep one")
        seen[answer] = number
    if not seen:
        raise OFAError(f"{path}: {field}: no answers in the file; write one per line")
    return tuple(seen)
