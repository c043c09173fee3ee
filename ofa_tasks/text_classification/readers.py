"""Text classification readers: tab-separated files as OFA's GLUE scripts read them (`selected_cols`), and JSON lines.

Records carry no image; the core gives them a blank one with its patch mask off, as the official
text-only datasets do.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core import plugin

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""


@attrs.frozen
class GlueTsvOptions(plugin.PerSplitFiles):
    """One TSV per split; `columns` as the official `selected_cols` (the text columns, then the label)."""

    columns: tuple[int, ...] | None = plugin.columns_option(
        "the text columns, then the label column", None, default=None
    )
    """Text columns then the label column: SST-2 [0, 1], CoLA [1, 2], MNLI [0, 1, 2], MRPC [0, 1, 2], QNLI [1, 2, 3],
    QQP [3, 4, 5], RTE [1, 2, 3] (the official scripts)."""
    header: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Skip the first line (GLUE's own files have a header; OFA's do not)."""


@READERS.add("glue_tsv", "tab-separated texts and label (GLUE / OFA's GLUE files; columns as selected_cols)")
def read_glue_tsv(options: GlueTsvOptions, split: str) -> Iterator[dict]:
    if options.columns is None:
        raise plugin.OFAError(
            "data.reader.columns: give the text columns then the label column, as the official selected_cols "
            "(SST-2 [0, 1], CoLA [1, 2], MNLI [0, 1, 2], MRPC [0, 1, 2], QNLI [1, 2, 3], QQP [3, 4, 5], RTE [1, 2, 3])"
        )
    *text_columns, label_column = options.columns

    def record(row: plugin.SplitRow) -> dict | None:
        if options.header and row.number == 1:
            return None
        fields = row.values
        return {
            "id": row.default_id,
            "image": None,
            "texts": [fields[c] for c in text_columns],
            "label": fields[label_column],
        }

    yield from plugin.tsv_records(options, split, record)


@attrs.frozen
class GlueJsonlOptions(plugin.PerSplitFiles):
    """One JSONL per split: the dataset's text fields (`sentence`; `sentence1`, `sentence2`; `question`, `sentence`;
    `question1`, `question2`) or `texts` (a list), `label` (may be left out in the test split), `id`."""


@READERS.add("glue_jsonl", "JSON lines: the dataset's text fields (or texts), label")
def read_glue_jsonl(options: GlueJsonlOptions, split: str) -> Iterator[dict]:
    def record(row: plugin.SplitRow) -> dict:
        label = row.values.get("label")
        if label is None and split != "test":
            raise plugin.UnusableRow("no label; every line needs one (it may be left out in the test split)")
        made = {**row.values, "id": str(row.values.get("id", row.default_id)), "image": None}
        return made if label is None else {**made, "label": str(label)}

    yield from plugin.jsonl_records(options, split, record)
