"""Classification readers: an image-folder tree (class name = label), JSON lines and OFA's ImageNet TSV.

Both yield `{"id", "image", "label", "references": [label]}`; image files stay paths, decoded per
batch. Bad rows are skipped or raise per `bad_records` (see `ofa_core.plugin.BadRows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import attrs

from ofa_core import plugin

READERS = plugin.Readers()
"""The readers this task registers, by name, each declared above its function."""

SPLIT_FOLDERS = {"train": ("train",), "valid": ("valid", "val"), "test": ("test",)}
"""Folder names accepted for each split, in `<root>/<split>/<class>/<image>`."""


def _record(record_id: str, image: str | bytes, label: str | None) -> dict:
    return {"id": record_id, "image": image, "label": label, "references": [label] if label is not None else []}


@attrs.frozen
class ImageFolderOptions:
    """`root/<split>/<class name>/<image files>`: train, valid (or val) and test folders; the class folder names are
    the labels."""

    root: str = plugin.path_option()
    bad_records: Literal["skip", "error"] = attrs.field(
        default="skip", validator=attrs.validators.in_(plugin.BAD_RECORD_POLICIES)
    )

    def split_folder(self, split: str) -> Path:
        names = SPLIT_FOLDERS.get(split, (split,))
        found = [Path(self.root) / name for name in names if (Path(self.root) / name).is_dir()]
        if len(found) > 1:
            raise plugin.OFAError(
                f"data.reader.root: both {found[0]} and {found[1]} exist; keep one folder for the {split} split"
            )
        if not found:
            raise plugin.OFAError(
                f"data.reader.root: no {' or '.join(names)} folder in {self.root} for the {split} split; "
                f"expected {self.root}/{names[0]}/<class name>/<images>"
            )
        return found[0]


def _visible(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if not path.name.startswith("."))


@READERS.add("image_folder", "folder tree <root>/<train|valid|val|test>/<label>/<image files>")
def read_image_folder(options: ImageFolderOptions, split: str) -> Iterator[dict]:
    """One record per image file, classes and files in sorted order; ids are `<class>/<file name>`."""
    folder = options.split_folder(split)
    bad = plugin.BadRows(options.bad_records)
    for class_folder in _visible(folder):
        if not class_folder.is_dir():
            bad(str(class_folder), f"not inside a class folder; images go in {folder}/<class name>/")
            continue
        label = class_folder.name.strip()
        for path in _visible(class_folder):
            if path.is_dir():
                bad(
                    str(path),
                    f"a folder inside class folder {class_folder.name!r}; images go directly in {class_folder}",
                )
                continue
            try:
                image = plugin.verified_image_file(path)
            except ValueError as error:
                bad(str(path), f"image: {error}")
                continue
            yield _record(f"{class_folder.name}/{path.name}", image, label)
    bad.summarise(folder, split)


@attrs.frozen
class ClassificationJsonlOptions(plugin.SplitFilesOptions):
    """One JSONL per split: `{"id"?, "image": path relative to the file | base64 | id in images, "label"}`."""


def _label(row: dict, split: str) -> str | None:
    """The row's label (a number is read as its text); only the test split may leave it out."""
    value = row.get("label")
    if value is None and split == "test":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise ValueError(f"label is {value!r}; give the class label as text")
    return str(value).strip()


@READERS.add("classification_jsonl", "JSON lines: image (path, base64 or TSV id), label")
def read_classification_jsonl(options: ClassificationJsonlOptions, split: str) -> Iterator[dict]:
    def record(row: plugin.SplitRow) -> dict:
        values = row.values
        try:
            image_value = values["image"]
            if not isinstance(image_value, str):
                raise TypeError(f"image is {image_value!r:.40}, not a string")
            label = _label(values, split)
        except (KeyError, TypeError, ValueError) as error:
            raise plugin.UnusableRow(
                f"not a classification line ({error.__class__.__name__}: {error}); needs image and label"
            ) from None
        image = row.image(image_value)
        record_id = values.get("id")
        return _record(row.default_id if record_id is None else str(record_id), image, label)

    yield from plugin.jsonl_records(options, split, record)


OFFICIAL_COLUMNS = (0, 2)
"""image, label words: `selected_cols` of the official ImageNet scripts (the TSV's column 1 is the label index)."""


@attrs.frozen
class ImageClassifyTsvOptions(plugin.PerSplitFiles):
    """The official ImageNet TSV per split (imagenet_1k_train/val.tsv); `columns` as the official `selected_cols`."""

    columns: tuple[int, ...] = plugin.columns_option("the image and the label words", 2, default=OFFICIAL_COLUMNS)
    """Where the image (base64) and the label words are: [0, 2] in OFA's files."""


@READERS.add(
    "image_classify_tsv", "official OFA ImageNet TSV (image, label index, label words; columns as selected_cols)"
)
def read_image_classify_tsv(options: ImageClassifyTsvOptions, split: str) -> Iterator[dict]:
    """One record per row; its id is the row's index from 0, as OFA's `image_classify` numbers them."""
    image_column, label_column = options.columns

    def record(row: plugin.SplitRow) -> dict:
        label = row.values[label_column].strip()
        if not label and split != "test":
            raise plugin.UnusableRow(f"column {label_column} (label words) is empty; check data.reader.columns")
        return _record(str(row.number - 1), row.image_column(image_column), label or None)

    yield from plugin.tsv_records(options, split, record)
