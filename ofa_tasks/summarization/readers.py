"""Summarization readers: the official Gigaword TSV (article, summary; `selected_cols` 0,1) and JSON lines."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core.plugin import BadRows, PerSplitFiles, ReaderSpec, columns_option, jsonl_rows, tsv_rows

OFFICIAL_COLUMNS = (0, 1)
"""article, summary: `selected_cols` of the official Gigaword scripts."""


@attrs.frozen
class SummaryTsvOptions(PerSplitFiles):
    """The official Gigaword TSV per split (no header); `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = columns_option("the article and the summary", 2, default=OFFICIAL_COLUMNS)
    """Where the article and the summary are: [0, 1] in the official files."""


def read_summary_tsv(options: SummaryTsvOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    source_column, summary_column = options.columns
    for number, fields in tsv_rows(path, max(options.columns) + 1, bad):
        yield {
            "id": f"{path.stem}:{number}",
            "image": None,
            "source": fields[source_column],
            "summary": fields[summary_column],
        }
    bad.summarise(path, split)


@attrs.frozen
class SummaryJsonlOptions(PerSplitFiles):
    """One JSONL per split: `source` (the article), `summary` (may be left out in the test split), `id`."""


def read_summary_jsonl(options: SummaryJsonlOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    for number, row in jsonl_rows(path, bad):
        summary = row.get("summary")
        if not isinstance(row.get("source"), str) or not (
            isinstance(summary, str) or (summary is None and split == "test")
        ):
            bad(
                f"{path}:{number}",
                "each line needs source and summary (strings; summary may be left out in the test split)",
            )
            continue
        record = {"id": str(row.get("id", f"{path.stem}:{number}")), "image": None, "source": row["source"]}
        yield record if summary is None else {**record, "summary": summary}
    bad.summarise(path, split)


READERS = {
    "summary_tsv": ReaderSpec(
        options=SummaryTsvOptions,
        open=read_summary_tsv,
        description="official OFA Gigaword TSV (article, summary; columns as selected_cols)",
    ),
    "summary_jsonl": ReaderSpec(
        options=SummaryJsonlOptions, open=read_summary_jsonl, description="JSON lines: source (the article), summary"
    ),
}
"""The readers this task registers, by name."""
