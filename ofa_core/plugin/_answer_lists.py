"""Answer lists for closed sets (class labels, VQA candidate answers), read from a file.

A `.txt` file holds one answer per line; a `.json` file a list of answers, or an object whose
keys are the answers (the shape of OFA's answer-to-label maps, once exported from pickle, which
is never loaded here because unpickling runs code).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from ofa_core.model.errors import OFAError


def read_answer_list(path: str | Path, field: str) -> tuple[str, ...]:
    """The answers in `path`, in file order; `field` names the recipe option in errors."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise OFAError(f"{path}: {field}: cannot read the answer list ({error.strerror}); check the path") from None
    if path.suffix.lower() == ".json":
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise OFAError(f"{path}: {field}: not valid JSON ({error}); give a list of answers or an object keyed by answer") from None
        if isinstance(value, dict):
            value = list(value)
        if not isinstance(value, list) or not all(isinstance(answer, str) for answer in value):
            raise OFAError(f"{path}: {field}: expected a JSON list of strings or an object keyed by answer")
        entries = [(index + 1, answer.strip()) for index, answer in enumerate(value)]
        where = "entry"
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise OFAError(f"{path}: {field}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None
        entries = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
        where = "line"
    seen: dict[str, int] = {}
    for number, answer in entries:
        if not answer:
            raise OFAError(f"{path}: {field}: {where} {number} is empty; remove it")
        if answer in seen:
            raise OFAError(f"{path}: {field}: {where} {number} repeats {answer!r} ({where} {seen[answer]}); keep one")
        seen[answer] = number
    if not seen:
        raise OFAError(f"{path}: {field}: no answers in the file; write one per line")
    return tuple(seen)
