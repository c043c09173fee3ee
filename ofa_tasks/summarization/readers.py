"""Summarization readers: the official Gigaword TSV (article, summary; `selected_cols` 0,1) and JSON lines."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core import plugin

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""

OFFICIAL_COLUMNS = (0, 1)
"""article, summary: `selected_cols` of the official Gigaword scripts."""


@attrs.frozen
class SummaryTsvOptions(plugin.PerSplitFiles):
    """The official Gigaword TSV per split (no header); `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = plugin.columns_option("the article and the summary", 2, default=OFFICIAL_COLUMNS)
    """Where the article and the summary are: [0, 1] in the official files."""


@READERS.add("summary_tsv", "official OFA Gigaword TSV (article, summary; columns as selected_cols)")
def read_summary_tsv(options: SummaryTsvOptions, split: str) -> Iterator[dict]:
    source_column, summary_column = options.columns

    def record(row: plugin.SplitRow) -> dict:
        fields = row.values
        return {"id": row.default_id, "image": None, "source": fields[source_column], "summary": fields[summary_column]}

    yield from plugin.tsv_records(options, split, record)


@attrs.frozen
class SummaryJsonlOptions(plugin.PerSplitFiles):
    """One JSONL per split: `source` (the article), `summary` (may be left out in the test split), `id`."""


@READERS.add("summary_jsonl", "JSON lines: source (the article), summary")
def read_summary_jsonl(options: SummaryJsonlOptions, split: str) -> Iterator[dict]:
    def record(row: plugin.SplitRow) -> dict:
        values, summary = row.values, row.values.get("summary")
        if not isinstance(values.get("source"), str) or not (
            isinstance(summary, str) or (summary is None and split == "test")
        ):
            raise plugin.UnusableRow(
                "each line needs source and summary (strings; summary may be left out in the test split)"
            )
        made = {"id": str(values.get("id", row.default_id)), "image": None, "source": values["source"]}
        return made if summary is None else {**made, "summary": summary}

    yield from plugin.jsonl_records(options, split, record)
