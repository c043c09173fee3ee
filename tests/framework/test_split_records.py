"""`jsonl_records` and `tsv_records`: a reader gives the per-row part, the plugin API the files, ids and bad rows."""

from __future__ import annotations

import base64

import attrs
import pytest

from ofa_core.plugin import (
    BadRecordError,
    PerSplitFiles,
    Readers,
    ReaderSpec,
    SplitFilesOptions,
    SplitRow,
    UnusableRow,
    columns_option,
    jsonl_records,
    tsv_records,
)
from ofa_core.testing import fake_image


@attrs.frozen
class TsvOptions(PerSplitFiles):
    columns: tuple[int, ...] = columns_option("text and image", 2, default=(0, 2))


def _text_and_image(row: SplitRow) -> dict | None:
    if row.values.get("skip"):
        return None
    if "text" not in row.values:
        raise UnusableRow("no text")
    return {
        "id": row.values.get("id", row.default_id),
        "text": row.values["text"],
        "image": row.image(row.values["image"]),
    }


def test_jsonl_records_apply_the_policy_to_unusable_and_broken_lines(tmp_path, caplog):
    fake_image().save(tmp_path / "a.png")
    lines = [
        '{"text": "one", "image": "a.png"}',
        "{broken",
        '{"image": "a.png"}',
        '{"skip": true}',
        '{"text": "two", "image": "missing.png", "id": "x"}',
        '{"id": "y", "text": "three", "image": "a.png"}',
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = SplitFilesOptions(train=str(tmp_path / "train.jsonl"))
    records = list(jsonl_records(options, "train", _text_and_image))
    assert [(r["id"], r["text"]) for r in records] == [("train:1", "one"), ("y", "three")]
    assert "skipped 3 bad records" in caplog.text
    assert f"{tmp_path / 'train.jsonl'}:3: no text" in caplog.text
    assert f"{tmp_path / 'train.jsonl'}:5: image:" in caplog.text
    strict = SplitFilesOptions(train=str(tmp_path / "train.jsonl"), bad_records="error")
    with pytest.raises(BadRecordError, match=r"train\.jsonl:2: not valid JSON"):
        list(jsonl_records(strict, "train", _text_and_image))


def test_tsv_records_need_every_column_and_name_a_bad_image_column(tmp_path, caplog):
    buffer = tmp_path / "b.png"
    fake_image().save(buffer)
    image = base64.b64encode(buffer.read_bytes()).decode()
    (tmp_path / "valid.tsv").write_text(f"one\tx\t{image}\nshort\ntwo\tx\tnot-base64!\n", encoding="utf-8")
    options = TsvOptions(valid=str(tmp_path / "valid.tsv"))

    def record(row: SplitRow) -> dict:
        return {"id": row.default_id, "text": row.values[0], "image": row.image_column(options.columns[1])}

    assert [r["text"] for r in tsv_records(options, "valid", record)] == ["one"]
    assert "valid.tsv:2: expected 3 tab-separated columns, found 1" in caplog.text
    assert "valid.tsv:3: column 2 (image):" in caplog.text and "check data.reader.columns" in caplog.text


def test_readers_declared_on_their_functions_take_the_options_class_from_the_signature():
    readers = Readers()

    @readers.add("words_tsv", "two columns")
    def read_words(options: TsvOptions, split: str):
        yield from ()

    assert readers == {"words_tsv": ReaderSpec(options=TsvOptions, open=read_words, description="two columns")}
    with pytest.raises(ValueError, match="'words_tsv' is declared twice"):
        readers.add("words_tsv", "again")(read_words)
    with pytest.raises(TypeError, match="annotate its first parameter"):
        readers.add("bare", "no annotation")(lambda options, split: iter(()))
