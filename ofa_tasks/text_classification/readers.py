"""Text classification readers: tab-separated files as OFA's GLUE scripts read them (`selected_cols`), and JSON lines.

Records carry no image; the core gives them a blank one with its patch mask off, as the official
text-only datasets do.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core.plugin import BadRows, OFAError, PerSplitFiles, ReaderSpec, columns_option, jsonl_rows, tsv_rows


@attrs.frozen
class GlueTsvOptions(PerSplitFiles):
    """One TSV per split; `columns` as the official `selected_cols` (the text columns, then the label)."""

    columns: tuple[int, ...] | None = columns_option("the text columns, then the label column", None, default=None)
    """Text columns then the label column: SST-2 [0, 1], CoLA [1, 2], MNLI [0, 1, 2], MRPC [0, 1, 2], QNLI [1, 2, 3],
    QQP [3, 4, 5], RTE [1, 2, 3] (the official scripts)."""
    header: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Skip the first line (GLUE's own files have a header; OFA's do not)."""


def read_glue_tsv(options: GlueTsvOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    if options.columns is None:
        raise OFAError(
            "data.reader.columns: give the text columns then the label column, as the official selected_cols "
            "(SST-2 [0, 1], CoLA [1, 2], MNLI [0, 1, 2], MRPC [0, 1, 2], QNLI [1, 2, 3], QQP [3, 4, 5], RTE [1, 2, 3])"
        )
    bad = BadRows(options.bad_records)
    *text_columns, label_column = options.columns
    for number, fields in tsv_rows(path, max(options.columns) + 1, bad):
        if options.header and number == 1:
            continue
        yield {
            "id": f"{path.stem}:{number}",
            "image": None,
            "texts": [fields[c] for c in text_columns],
            "label": fields[label_column],
        }
    bad.summarise(path, split)


@attrs.frozen
class GlueJsonlOptions(PerSplitFiles):
    """One JSONL per split: the dataset's text fields (`sentence`; `sentence1`, `sentence2`; `question`, `sentence`;
    `question1`, `question2`) or `texts` (a list), `label` (may be left out in the test split), `id`."""


def read_glue_jsonl(options: GlueJsonlOptions, split: str) -> Iterator[dict]:
    path = options.split_file(split)
    bad = BadRows(options.bad_records)
    for number, row in jsonl_rows(path, bad):
        label = row.get("label")
        if label is None and split != "test":
            bad(f"{path}:{number}", "no label; every line needs one (it may be left out in the test split)")
            continue
        record = {**row, "id": str(row.get("id", f"{path.stem}:{number}")), "image": None}
        yield record if label is None else {**record, "label": str(label)}
    bad.summarise(path, split)


READERS = {
    "glue_tsv": ReaderSpec(
        options=GlueTsvOptions,
        open=read_glue_tsv,
        description="tab-separated texts and label (GLUE / OFA's GLUE files; columns as selected_cols)",
    ),
    "glue_jsonl": ReaderSpec(
        options=GlueJsonlOptions,
        open=read_glue_jsonl,
        description="JSON lines: the dataset's text fields (or texts), label",
    ),
}
"""The readers this task registers, by name."""
