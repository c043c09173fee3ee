"""A report's sections from predictions files and the recipe that made them: rows, their meta file, per-example
scores (computed with the task's metric when an older file has none) and the split's records for images and
prompts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from ofa_core._errors import OFAError
from ofa_core.plugin._scores import score_rows, score_source
from ofa_core.recipe import Resolved
from ofa_core.report.build import Section, worst_first


def read_rows(path: Path) -> list[dict]:
    """The rows of a predictions JSONL; one line naming the file and the row when one is not a prediction."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise OFAError(
            f"{path}: cannot read the predictions file ({error.strerror}); give the JSONL `ofa eval` wrote"
        ) from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise OFAError(
                f"{path}: line {number} is not JSON ({error}); give the predictions JSONL `ofa eval` wrote"
            ) from None
        if not isinstance(row, dict) or "id" not in row or "prediction" not in row or "references" not in row:
            raise OFAError(
                f"{path}: line {number} lacks `id`, `prediction` or `references`; give the predictions "
                "JSONL `ofa eval` wrote"
            )
        rows.append(row)
    return rows


def read_meta(path: Path) -> dict[str, Any]:
    """`<file>.meta.json` beside a predictions file (checkpoint, split, precision, scores...); {} without one."""
    meta = path.with_name(path.name + ".meta.json")
    if not meta.is_file():
        return {}
    try:
        value = orjson.loads(meta.read_bytes())
    except orjson.JSONDecodeError as error:
        raise OFAError(
            f"{meta}: not JSON ({error}); delete it or write the predictions again with `ofa eval`"
        ) from None
    return value if isinstance(value, dict) else {}


def _metric_values(resolved: Resolved, rows: list[dict]) -> dict[str, float]:
    """The task's metrics computed on the rows (for a file whose meta does not record them)."""
    values: dict[str, float] = {}
    for _, spec, options in resolved.metrics:
        metric = spec.build(options)
        metric.update([row["prediction"] for row in rows], [row["references"] for row in rows])
        values.update({key: value for key, value in metric.compute().items() if isinstance(value, (int, float))})
    return values


def _records(resolved: Resolved, split: str, wanted: set[str]) -> dict[str, dict]:
    """The split's records (after the task's preprocess) whose ids are `wanted`, read until all are found."""
    found: dict[str, dict] = {}
    if not wanted:
        return found
    preprocess = resolved.task.preprocess
    for record in resolved.reader.open(resolved.reader_options, split):
        if preprocess is not None:
            record = preprocess(record, split, resolved.task_options)
            if record is None:
                continue
        key = str(record.get("id"))
        if key in wanted and key not in found:
            found[key] = record
            if len(found) == len(wanted):
                break
    return found


def section(resolved: Resolved, path: Path, limit: int, split: str | None = None) -> Section:
    """One task's section from its predictions file, with scores added when the file has none."""
    rows = read_rows(path)
    meta = read_meta(path)
    chosen = score_source(resolved.metrics)
    if chosen is not None and rows and not all("score" in row for row in rows):
        score_rows(resolved.metrics, rows)
    scores = meta.get("scores") or _metric_values(resolved, rows)
    draft = Section(
        label=resolved.label,
        task=resolved.task_name,
        rows=rows,
        records={},
        prompt=resolved.prompt.source,
        scores=scores,
        higher_is_better=chosen[1].higher_is_better if chosen else True,
        meta=meta,
        score_name=f"{chosen[0].metric}: {chosen[0].key}" if chosen else None,
    )
    wanted = {str(row["id"]) for row in worst_first(draft)[:limit]}
    split = split or meta.get("split", "valid")
    records = _records(resolved, split, wanted)
    missing = sorted(wanted - records.keys())
    if missing:
        raise OFAError(
            f"{path}: {len(missing)} of the {len(wanted)} ids to show (e.g. {missing[0]!r}) are not in the {split} "
            "split the recipe's reader opens; give the --split and --set flags the evaluation was run with"
        )
    return attrs.evolve(draft, records=records)


def sections(
    tasks: Sequence[Resolved], files: Mapping[str, str | Path], limit: int, split: str | None = None
) -> list[Section]:
    """The sections of every task's predictions file (`files` maps each task's label to its file)."""
    return [
        section(resolved, Path(files[resolved.label]), limit, split) for resolved in tasks if resolved.label in files
    ]
