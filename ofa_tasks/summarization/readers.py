"""Summarization readers: the official Gigaword TSV (article, summary; `selected_cols` 0,1) and JSON lines."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core.plugin import BadRows, PerSplitFiles, jsonl_rows, tsv_rows

OFFICIAL_COLUMNS = (0, 1)
"""article, summary: `selected_cols` of the official Gigaword scripts."""


def _check_columns(instance, attribute, value: tuple[int, ...]) -> None:
    if len(value) != 2 or len(set(value)) != 2 or any(not isinstance(v, int) or v < 0 for v in value):
        raise ValueError(f"give 2 distinct column numbers (from 0) for the article and the summary, "
                         f"as the official selected_cols; got {list(value)}")


@attrs.frozen
class SummaryTsvOptions(PerSplitFiles):
    """The official Gigaword TSV per split (no header); `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = attrs.field(default=OFFICIAL_COLUMNS, converter=tuple, validator=_check_columns)
    """Where the article and the summary are: [0, 1] in the official files."""


def read_summary_tsv(options: SummaryTsvOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    source_column, summary_column = options.columns
    for number, fields in tsv_rows(path, max(options.columns) + 1, bad):
        yield {"id": f"{path.stem}:{number}", "image": None, "source": fields[source_column],
               "summary": fields[summary_column]}
    bad.summarise(path, split)


@attrs.frozen
class SummaryJsonlOptions(PerSplitFiles):
    """One JSONL per split: `source` (the article), `summary` (may be left out in the test split), `id`."""


def read_summary_jsonl(options: SummaryJsonlOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    for number, row in jsonl_rows(path, bad):
        summary = row.get("summary")
        if not isinstance(row.get("source"), str) or not (isinstance(summary, str) or (summary is None and split == "test")):
            bad(f"{path}:{number}", "each line needs source and summary (strings; summary may be left out in the test split)")
            continue
        record = {"id": str(row.get("id", f"{path.stem}:{number}")), "image": None, "source": row["source"]}
        yield record if summary is None else {**record, "summary": summary}
    bad.summarise(path, split)
