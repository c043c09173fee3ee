"""The official SNLI-VE TSV reader: id, image, hypothesis, premise caption, label (columns as `selected_cols`)."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ofa_core import plugin
from ofa_tasks.snli_ve.text import LABEL_WORDS

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""

OFFICIAL_COLUMNS = (0, 2, 3, 4, 5)
"""uniq-id, image, hypothesis, caption, label: `selected_cols` of the official SNLI-VE scripts."""


@attrs.frozen
class SnliVeTsvOptions(plugin.PerSplitFiles):
    """The official SNLI-VE TSV per split (snli_ve_train/dev/test.tsv); `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = plugin.columns_option(
        "uniq-id, image, hypothesis, caption and label", 5, default=OFFICIAL_COLUMNS
    )
    """Where uniq-id, image (base64), hypothesis, premise caption and label are: [0, 2, 3, 4, 5] in OFA's files."""


@READERS.add(
    "snli_ve_tsv", "official OFA SNLI-VE TSV (uniq-id, image, hypothesis, caption, label; columns as selected_cols)"
)
def read_snli_ve_tsv(options: SnliVeTsvOptions, split: str) -> Iterator[dict]:
    """Records with `hypothesis`, `premise`, and `label` as yes/no/maybe; any other label is an error naming the row,
    as OFA refuses it (an empty one is allowed in the test split)."""
    id_column, image_column, hypothesis_column, premise_column, label_column = options.columns

    def record(row: plugin.SplitRow) -> dict:
        fields = row.values
        label = fields[label_column].strip()
        if label not in LABEL_WORDS and not (split == "test" and not label):
            raise plugin.OFAError(
                f"{row.where}: column {label_column} (label) is {label[:40]!r}, not entailment, "
                f"contradiction or neutral; fix the row or data.reader.columns"
            )
        image = row.image_column(image_column)
        word = LABEL_WORDS.get(label)
        return {
            "id": fields[id_column],
            "image": image,
            "hypothesis": fields[hypothesis_column],
            "premise": fields[premise_column],
            "label": word,
            "references": [word] if word else [],
        }

    yield from plugin.tsv_records(options, split, record)
